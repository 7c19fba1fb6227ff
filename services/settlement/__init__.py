"""The settlement service: deliveries and payments per fill, the household income ledger, coverage."""
