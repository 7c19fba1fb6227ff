"""Buyers' reads of the market: fills, offers, floor activations, household incomes and coverage. See README.md."""
