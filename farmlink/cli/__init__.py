"""`farmlink`: the command line for people — run the services, publish scenarios, read the market, run the demo.

A thin layer of adapters: each group of commands lives in its own module of this package (running: serve, up, down,
status; producer: publish, simulate; reads; whatif; demo; chaos; audit; bench; contracts; ...) and calls the package of
the people it serves (farmlink.producers, farmlink.buyers, farmlink.office, farmlink.audit, farmlink.operations); this
module only registers them."""

import typer

from farmlink.cli.audit import audit_app
from farmlink.cli.bench import bench_app
from farmlink.cli.chaos import chaos
from farmlink.cli.contracts import contracts_app
from farmlink.cli.demo import DEMO_SCENARIO, demo
from farmlink.cli.gateway import gateway, sign_app
from farmlink.cli.infra import infra_app
from farmlink.cli.pairings import pairings
from farmlink.cli.parties import parties_app
from farmlink.cli.problems import problems
from farmlink.cli.producer import publish, simulate
from farmlink.cli.reads import coverage, incomes, matches, offers
from farmlink.cli.rules import rules_app
from farmlink.cli.running import down, serve, status, up
from farmlink.cli.whatif import what_if

__all__ = ["DEMO_SCENARIO", "app"]

app = typer.Typer(
    help="farmlink: event-sourced supply and purchase matching for Yanhe county. "
    "Cooperatives publish harvests, buyers subscribe to offers, auditors replay the log.",
    no_args_is_help=True,
)


app.add_typer(infra_app, name="infra")
app.add_typer(rules_app, name="rules")
app.add_typer(parties_app, name="parties")
app.add_typer(contracts_app, name="contracts")
app.add_typer(sign_app, name="sign")
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")
for command in (
    serve,
    up,
    down,
    status,
    publish,
    simulate,
    matches,
    offers,
    incomes,
    coverage,
    demo,
    chaos,
    pairings,
    problems,
    gateway,
):
    app.command()(command)
app.command("what-if")(what_if)
