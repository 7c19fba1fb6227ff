"""`python -m farmlink.cli ...`: how the launcher starts each service and the gateway as a process of its own."""

from farmlink.cli import app

app()
