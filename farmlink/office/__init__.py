"""The pairing office's reads: pairings and projects, the supervision ledger, what a changed promise would have paid.
See README.md."""
