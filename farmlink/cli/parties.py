"""`farmlink parties`: a registered buyer's or cooperative's own Kafka access (docs/architecture.md, "Party topics").

What the commands print and the credentials' life cycle: farmlink/operations/parties.py."""

from __future__ import annotations

import json

import typer

from farmlink.operations.parties import PartyError, access_of, parse_party, take_credentials

parties_app = typer.Typer(
    help="A registered buyer's or cooperative's own Kafka topic and principal: where it reads its fills, "
    "receipts and events, and its credentials, handed out once.",
    no_args_is_help=True,
)


@parties_app.command("credentials")
def credentials(party: str = typer.Argument(..., help="buyer:<buyer_id> or cooperative:<cooperative_id>")) -> None:
    """Print a registered party's Kafka credentials as JSON, ONCE: the file holding them is deleted. Give them to the
    party's system; it reads its own topic with isolation_level=read_committed."""
    try:
        print(json.dumps(take_credentials(*parse_party(party)), indent=2, ensure_ascii=False))
    except PartyError as bad:
        typer.echo(str(bad), err=True)
        raise typer.Exit(1) from None


@parties_app.command("show")
def show(party: str = typer.Argument(..., help="buyer:<buyer_id> or cooperative:<cooperative_id>")) -> None:
    """Print a party's topic, principal and consumer group prefix as JSON (no secret; the party need not exist)."""
    try:
        print(json.dumps(access_of(*parse_party(party)), indent=2, ensure_ascii=False))
    except PartyError as bad:
        typer.echo(str(bad), err=True)
        raise typer.Exit(1) from None
