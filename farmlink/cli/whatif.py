"""`farmlink what-if`: the recorded journal replayed with changed commitment terms; nothing is written."""

import asyncio
import json
from enum import Enum

import asyncpg
import typer

from events.settings import settings
from farmlink.cli.common import console, quiet_logs


class WhatIfFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


PER_MU = typer.Option(
    [], "--per-mu", metavar="PRODUCT|COMMITMENT=QTY", help="the most a cooperative sells per planted mu ('none': no limit)"
)
VALID_TO = typer.Option([], "--valid-to", metavar="PRODUCT|COMMITMENT=YYYY-MM-DD", help="the commitment's last day")
FORMAT = typer.Option(
    WhatIfFormat.table, "--format", help="table for people; json (one object), jsonl (a row a line) or csv for machines"
)
SCHEMA_PREFIX = typer.Option(
    "",
    "--schema-prefix",
    help="read schemas named <prefix><service> (the auditor's role must be granted reading them, as migrations with readers do)",
)


def what_if(
    floor: list[str] = typer.Option([], "--floor", metavar="PRODUCT|COMMITMENT=FEN", help="the floor price in fen per unit"),
    cap: list[str] = typer.Option([], "--cap", metavar="PRODUCT|COMMITMENT=QTY", help="the cap quantity ('none': no cap)"),
    per_mu: list[str] = PER_MU,
    valid_to: list[str] = VALID_TO,
    fmt: WhatIfFormat = FORMAT,
    changed_only: bool = typer.Option(False, "--changed-only", help="list only households and villages whose figures change"),
    schema_prefix: str = SCHEMA_PREFIX,
) -> None:
    """Replay the recorded journal with changed commitment terms through the same matcher and print, per household
    and village, what would have been earned against what was. Nothing is written.

    Example: farmlink what-if --floor oil_tea_fruit=460

    Each option is repeatable, as KEY=VALUE: KEY a product (all its commitments) or a commitment id (that one).
    `commitment:ID` names a commitment whose id is also a product's name; a commitment's own term wins over its product's.
    Without options: the identity replay, which must equal the log (exit 1 if it does not: run `farmlink audit`).
    Exit 2 for a term that names nothing in the log or that the commitment contract refuses.
    """
    from events.migrations import check_schema_name
    from farmlink.office.whatif import ChangeError, Changes, as_csv, as_json, as_jsonl, print_tables

    try:
        changes = Changes.parse(floor, cap, per_mu, valid_to)
    except ChangeError as error:
        console.print(str(error), style="red", highlight=False, markup=False)
        raise typer.Exit(2) from error
    try:
        check_schema_name(f"{schema_prefix}matching")
    except ValueError as error:
        console.print(f"--schema-prefix {schema_prefix}: {error}", style="red", highlight=False, markup=False)
        raise typer.Exit(2) from error
    config = settings()
    result = _replay(config, schema_prefix, changes)
    if fmt is WhatIfFormat.table:
        print_tables(result, console, changed_only)
    elif fmt is WhatIfFormat.json:
        typer.echo(json.dumps(as_json(result, changed_only), ensure_ascii=False))
    elif fmt is WhatIfFormat.jsonl:
        typer.echo("\n".join(as_jsonl(result, changed_only)))
    else:
        typer.echo(as_csv(result, changed_only), nl=False)

    def say(text: str, style: str) -> None:
        if fmt is WhatIfFormat.table:
            console.print(text, style=style, highlight=False)
        else:  # machines read stdout
            typer.echo(text, err=True)

    say(
        f"nothing was written: the log was read as {config.role_of('auditor')} in read-only transactions, the replay ran in memory",
        "dim",
    )
    if changes.empty and not result.identical:
        say("the identity replay differs from the recorded fills: run `farmlink audit`", "red")
        raise typer.Exit(1)


def _replay(config, schema_prefix: str, changes):
    """The log read as the auditor and replayed with the changes, in memory; exit 2 for a schema the auditor may
    not read or a change the contract refuses."""
    from farmlink.audit.parallel import no_cyclic_gc
    from farmlink.office.whatif import ChangeError, load_log, what_if as replay_what_if

    quiet_logs()
    with no_cyclic_gc():
        try:
            log = asyncio.run(load_log(config.auditor_dsn, schema_prefix))
        except asyncpg.InsufficientPrivilegeError as error:
            console.print(
                f"--schema-prefix {schema_prefix!r}: {config.role_of('auditor')} may not read it: {error}",
                style="red",
                highlight=False,
                markup=False,
            )
            raise typer.Exit(2) from error
        try:
            result = replay_what_if(log, changes)
        except ChangeError as error:
            console.print(str(error), style="red", highlight=False, markup=False)
            raise typer.Exit(2) from error
    return result
