"""`farmlink audit`: replay and check the whole log; checkpoints, digests and proofs a third party can hold."""

import asyncio
import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from events.settings import settings
from farmlink.cli.common import console, quiet_logs


class Source(str, Enum):
    postgres = "postgres"
    kafka = "kafka"


class ReportLang(str, Enum):
    en = "en"
    zh = "zh"


audit_app = typer.Typer(help="Replay and check the whole log; digests a third party can hold.")
AUDITOR_KEY = typer.Option(
    None,
    "--key",
    help="the auditor's own Ed25519 key file (default $FARMLINK_HOME/auditor.key, made when "
    "missing): signs checkpoints and checks them",
)


def _auditor_key(path: Path | None):
    from farmlink.audit.checkpoint import CheckpointError, load_or_create_key

    try:
        return load_or_create_key(path or settings().home / "auditor.key")
    except CheckpointError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(2) from error


AS_JSON = typer.Option(
    False,
    "--json",
    help="print the result as one JSON object for machines (format version 1: "
    "contracts/reports/audit-findings.v1.json; every finding with its stable code)",
)
EXPORT = typer.Option(
    None,
    "--export",
    help="write the full ledgers (every fill, household, commitment, village, finding) as CSV and JSON into this directory",
)
SINCE = typer.Option(
    None,
    "--since",
    help="an incremental audit: check the log up to this checkpoint against it, verify and re-execute only what came after",
)
CHECKPOINT = typer.Option(
    None,
    "--checkpoint",
    help="after a clean audit, write a checkpoint signed with the auditor's key to this file (for a later --since)",
)
REPORT = typer.Option(None, "--report", help="write a self-contained HTML report (summaries, top lists, charts) to this file")


@audit_app.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    source: Source = typer.Option(
        Source.postgres, "--source", help="read the log from PostgreSQL or from the Kafka topics (offset 0)"
    ),
    as_of: int | None = typer.Option(None, "--as-of", help="also show the market as known at this matching-log global position"),
    as_json: bool = AS_JSON,
    report: Path | None = REPORT,
    lang: ReportLang = typer.Option(ReportLang.en, "--lang", help="the report's language: en, or zh (Chinese)"),
    export: Path | None = EXPORT,
    reconcile_kafka: bool = typer.Option(
        True, "--reconcile/--no-reconcile", help="check every stored event reached Kafka exactly once"
    ),
    since: Path | None = SINCE,
    checkpoint: Path | None = CHECKPOINT,
    key: Path | None = AUDITOR_KEY,
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="worker processes for the costly checks (default: one per core)"
    ),
) -> None:
    """Replay the whole log, verify hash chains, re-execute the matcher, check invariants, reconcile with Kafka.

    Exit 0 when clean, 1 with the list of findings otherwise (2 when a checkpoint cannot be used).
    """
    if ctx.invoked_subcommand is not None:
        return
    quiet_logs()
    config = settings()
    auditor_key = _auditor_key(key) if since is not None or checkpoint is not None else None
    start = _start_from(since, auditor_key) if since is not None else None
    result = _audit_with_progress(config, source.value, reconcile_kafka, workers, start, checkpoint is not None, as_json)
    if checkpoint is not None:
        _write_checkpoint(result, checkpoint, auditor_key)
    as_of_view = _as_of(result, as_of) if as_of is not None else None
    if report is not None or export is not None:
        _write_report(result, report, lang.value, export)
    if as_json:
        from farmlink.audit.output import audit_output

        typer.echo(json.dumps(audit_output(result, as_of_view), ensure_ascii=False))
    else:
        _print_audit(result, as_of_view, report)
    raise typer.Exit(0 if result.clean else 1)


def _start_from(since: Path, auditor_key):
    """The checkpoint an incremental audit starts from, checked against the auditor's key; exit 2 when it cannot be used."""
    from farmlink.audit.checkpoint import Checkpoint, CheckpointError

    try:
        return Checkpoint.read(since, auditor_key)
    except CheckpointError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(2) from error


def _audit_with_progress(config, source: str, reconcile_kafka: bool, workers, start, want_books: bool, quiet: bool):
    """The audit run, with a progress bar per phase on standard error (none for --json)."""
    from farmlink.audit.run import audit as run_audit

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    ) as bar:

        def step(name: str, total: int):
            task = bar.add_task(name, total=total)
            return lambda n: bar.advance(task, n)

        result = asyncio.run(
            run_audit(
                config.bootstrap,
                config.auditor_dsn,
                source,
                reconcile_kafka,
                step,
                workers=workers,
                since=start,
                want_books=want_books,
            )
        )
    return result


def _write_checkpoint(result, checkpoint: Path, auditor_key) -> None:
    """A checkpoint signed with the auditor's key, for a later --since: only for a clean log."""
    from farmlink.audit.run import checkpoint_of

    if result.clean:
        checkpoint_of(result, auditor_key).write(checkpoint)
        console.print(f"checkpoint written to {checkpoint}", style="dim", highlight=False)
    else:
        console.print(
            f"no checkpoint written: a checkpoint vouches only for a clean log ({len(result.findings)} findings)",
            style="red",
            highlight=False,
        )


def _as_of(result, position: int) -> dict[str, Any]:
    from farmlink.audit.asof import market_as_of
    from matcher.output import quantity_text

    view = market_as_of(result.log, position)
    return {
        "position": view.position,
        "products": {
            product: {
                "journal_seq": p.journal_seq,
                "resting_lots": [
                    {"lot_id": lot.lot_id, "quantity_left": quantity_text(lot.quantity_left)} for lot in p.resting_lots
                ],
                "open_outlets": [
                    {
                        "outlet_kind": o.outlet_kind,
                        "outlet_id": o.outlet_id,
                        "quantity_left": None if o.quantity_left is None else quantity_text(o.quantity_left),
                    }
                    for o in p.open_outlets
                ],
                "fills_so_far": len(p.fills),
            }
            for product, p in sorted(view.products.items())
        },
    }


def _write_report(result, path: Path | None, lang: str = "en", export: Path | None = None) -> None:
    from farmlink.audit.report import write_audit_report

    written = write_audit_report(result, path, lang, export)
    if export is not None:
        typer.echo(
            f"ledgers written to {export}: " + ", ".join(f"{name} ({rows:,} rows)" for name, rows in written.items()), err=True
        )


def _print_audit(result, as_of_view, report: Path | None) -> None:
    summary = result.summary()
    if result.clean:
        console.print(
            f"[green]audit clean[/]: {summary['events_audited']} events from {summary['source']}, "
            f"{summary['journal_inputs']} journal inputs re-executed, {summary['fills']} fills identical; "
            f"reconciled with Kafka: {'yes' if result.reconciled else 'no'}; state hash {summary['state_hash'][:16]}"
        )
    else:
        console.print(f"[red]{len(result.findings)} findings[/] in {summary['events_audited']} events from {summary['source']}:")
        for finding in result.findings:
            console.print(f"  {finding}", highlight=False, markup=False)
    if as_of_view is not None:
        for product, view in as_of_view["products"].items():
            console.print(
                f"as of position {as_of_view['position']}, {product}: journal input {view['journal_seq']}, "
                f"{len(view['resting_lots'])} lots resting, {len(view['open_outlets'])} outlets open, "
                f"{view['fills_so_far']} fills so far"
            )
            for lot in view["resting_lots"]:
                console.print(f"    lot {lot['lot_id']}: {lot['quantity_left']} left")
            for outlet in view["open_outlets"]:
                left = outlet["quantity_left"] or "no cap"
                console.print(f"    {outlet['outlet_kind']} {outlet['outlet_id']}: {left} left")
    if report is not None:
        console.print(f"report written to {report}")


@audit_app.command("digest")
def audit_digest(
    as_json: bool = typer.Option(False, "--json", help="print the digest only (one line of JSON), for a third party to keep"),
) -> None:
    """Print a compact digest of the whole log: a Merkle root over every stream's chain head, with the last position of each schema."""
    from farmlink.audit.ledger import digest_of
    from farmlink.audit.stored_log import stored_log

    quiet_logs()
    digest = digest_of(asyncio.run(stored_log(settings().auditor_dsn)))  # read as it streams by: a head per stream held
    if as_json:
        typer.echo(digest.text())
        return
    console.print(f"digest of {digest.events} events in {digest.streams} streams, Merkle root {digest.root}", highlight=False)
    typer.echo(digest.text())


@audit_app.command("verify-digest")
def audit_verify_digest(
    digest_text: str = typer.Argument(..., metavar="DIGEST", help="the digest's JSON text, or a file holding it"),
    event: str | None = typer.Option(
        None, "--event", help="print the proof path of this event id (default: the digest's last matching event)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print findings and the proof as one JSON object"),
) -> None:
    """Prove the current log extends DIGEST: every chain up to the digest's positions holds and its heads give
    the digest's Merkle root (events after it are no finding); print the proof path for one event.
    Exit 0 when it does, 1 with findings, 2 for a digest that cannot be read."""
    from farmlink.audit.store_questions import check_stored_chains
    from farmlink.audit.ledger import Digest, as_of_digest, extends, proof_for
    from farmlink.audit.stored_log import stored_log

    quiet_logs()
    text = Path(digest_text).read_text(encoding="utf-8") if Path(digest_text).is_file() else digest_text
    try:
        digest = Digest.parse(text.strip())
    except ValueError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        raise typer.Exit(2) from error
    dsn = settings().auditor_dsn
    log = asyncio.run(stored_log(dsn))  # read again from the store by each pass: nothing of it held
    cursor = as_of_digest(log, digest)
    findings = extends(log, digest, asyncio.run(check_stored_chains(dsn)), cursor)
    if event is None:  # the last matching event at or before the digest
        limit = digest.positions.get("matching", 0)
        for record in log.by_schema.get("matching", ()):
            if record.global_position <= limit:
                event = record.event_id
    proof = None
    if event is not None:
        try:
            proof = proof_for(log, digest, event, cursor.before)
        except KeyError as error:
            console.print(f"[red]{error.args[0]}[/]", highlight=False)
            raise typer.Exit(2) from error
    if as_json:
        typer.echo(
            json.dumps({"extends": not findings, "findings": [f.as_dict() for f in findings], "proof": proof}, ensure_ascii=False)
        )
    else:
        if findings:
            console.print(f"[red]the log does not extend the digest[/]: {len(findings)} findings")
            for finding in findings:
                console.print(f"  {finding}", highlight=False, markup=False)
        else:
            console.print(
                f"[green]the log extends the digest[/]: {digest.events} events up to {digest.positions} unchanged, "
                f"{log.count() - digest.events} after it"
            )
        if proof is not None:
            _print_proof(proof)
    raise typer.Exit(1 if findings else 0)


def _print_proof(proof: dict[str, Any]) -> None:
    e, head = proof["event"], proof["head"]
    console.print(
        f"proof for event {e['event_id']} ({e['schema']}/{e['stream_id']}@{e['stream_version']}, position "
        f"{e['global_position']}), hash {e['hash']}",
        highlight=False,
    )
    console.print(
        f"  {len(proof['chain_to_head'])} chain links to the stream's head as of the digest: version "
        f"{head['stream_version']} at position {head['global_position']}, hash {head['hash']}",
        highlight=False,
    )
    console.print(f"  leaf {proof['leaf']}", highlight=False)
    for step in proof["merkle_path"]:
        console.print(f"  + {step['side']:<5} {step['hash']}", highlight=False)
    console.print(
        f"  = root {proof['root']} ({'matches' if proof['matches_digest'] else 'does NOT match'} the digest)", highlight=False
    )
