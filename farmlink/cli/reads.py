"""Buyers' and offices' reads of the market on the command line: fills, open offers, household incomes, coverage."""

import asyncio
import json

import typer

from farmlink.buyers import reports
from farmlink.cli.common import FORMAT, Format, print_rows, read_as_auditor


def matches(fmt: Format = FORMAT) -> None:
    """Every fill, in the matcher's output order (the fields of matching-rules.md)."""
    fills = asyncio.run(read_as_auditor(reports.recorded_fills))
    print_rows([reports.fill_output(fill) for fill in fills], fmt, "fills")


def offers(fmt: Format = FORMAT) -> None:
    """Lots on offer now, with what is left of each."""
    print_rows(asyncio.run(read_as_auditor(reports.open_offers)), fmt, "open offers")


def incomes(fmt: Format = FORMAT) -> None:
    """The household income ledger: fen paid per household and product."""
    print_rows(asyncio.run(read_as_auditor(reports.household_incomes)), fmt, "household incomes (fen paid)")


def coverage(fmt: Format = FORMAT) -> None:
    """Registered-poor households with and without industry income, per village and county; plans vs actuals."""
    view = asyncio.run(read_as_auditor(reports.coverage))
    if fmt is Format.jsonl:
        for section, rows in view.items():
            for row in rows:
                typer.echo(json.dumps({"section": section, **row}, ensure_ascii=False, separators=(",", ":"), default=str))
        return
    print_rows(view["villages"], fmt, "registered-poor households by village")
    print_rows(view["counties"], fmt, "registered-poor households by county")
    print_rows(view["plans"], fmt, "industry plans beside actuals")
