"""The supervision ledger on the real services: a supervision round opens a problem for a fill left unpaid
past its due date, and the pairing service records it (ProblemFound); the payment arrives; the next round closes
the problem, citing the payment, and the service records it cured (ProblemCured); `farmlink problems` lists both
states from the log in PostgreSQL, and the audit, which re-derives the ledger from the log, is clean."""

import asyncio
import json

import pytest
from typer.testing import CliRunner

import asyncpg

from events.hashchain import canonical_json, hashed_content, link_hash
from events.settings import settings
from farmlink.audit.run import audit
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.cli import app
from farmlink.cli.problems import read_ledger
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import read_scenario

from tests.e2e.inputs import scenario_file
from tests.payloads import chili_order, fengjia, fengjia_lot

pytestmark = pytest.mark.e2e


async def recorded_problems(dsn: str) -> list[tuple[str, str, str, list[str]]]:
    """The problems the pairing service recorded rounds found and cured: (type, round, problem, evidence)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT event_type, payload::text AS payload FROM pairing.events "
            "WHERE event_type IN ('ProblemFound', 'ProblemCured') ORDER BY global_position"
        )
    finally:
        await conn.close()
    payloads = [(row["event_type"], json.loads(row["payload"])) for row in rows]
    return [(kind, p["round_id"], p["problem_id"], p["evidence"]) for kind, p in payloads]


async def test_a_late_payment_opens_a_problem_at_a_round_and_the_payment_closes_it_at_the_next(clean_system, tmp_path):
    season = scenario_file(
        tmp_path / "season.jsonl",
        ("cooperative.registered", fengjia(("fj-1", False))),
        ("buyer.registered", {"buyer_id": "zunyi-hotpot", "name": "Zunyi hotpot base"}),
        (
            "pairing.registered",
            {
                "pairing_id": "tongxin-fengjia",
                "kind": "1+1",
                "helper": "Tongxin community",
                "helper_kind": "village",
                "helped": "Fengjia",
                "helped_kind": "village",
                "helped_township": "Ketian",
                "team": "Dejiang team",
            },
        ),
        ("harvest.recorded", fengjia_lot("lot-1", "100")),
        ("order.placed", chili_order("o1", "zunyi-hotpot", "100", 400)),
        ("delivery.confirmed", {"lot_id": "lot-1", "outlet_id": "o1", "quantity": "100"}),
        ("supervision.round", {"round_id": "september", "as_of": "2020-09-25"}),
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(season))
    assert summary.rejected == [] and summary.accepted == 7
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    [problem] = (await read_ledger()).problems.values()
    assert (problem.kind, problem.state, problem.opened_in, problem.owner_team, problem.township) == (
        "unpaid-fill",
        "open",
        "september",
        "Dejiang team",
        "Ketian",
    )
    assert problem.reason == "0 of 40000 fen paid as of 2020-09-25, over 30 days after the lot's expiry (2020-08-20)"
    assert await recorded_problems(settings().auditor_dsn) == [
        ("ProblemFound", "september", problem.problem_id, problem.opened_evidence)
    ]

    later = scenario_file(
        tmp_path / "later.jsonl",
        ("payment.made", {"lot_id": "lot-1", "outlet_id": "o1", "amount_fen": 40000}),
        ("problem.rectified", {"problem_id": problem.problem_id, "action": "the township called the buyer"}),
        ("supervision.round", {"round_id": "october", "as_of": "2020-10-25"}),
    )
    summary = await publish_lines(clean_system.bootstrap, read_scenario(later))
    assert summary.rejected == [] and summary.accepted == 3
    await wait_until_caught_up(clean_system.bootstrap, clean_system.dsn)

    [closed] = (await read_ledger()).problems.values()
    assert (closed.state, closed.closed_in, closed.closed_how, closed.rectifications) == (
        "closed",
        "october",
        "cured",
        ["the township called the buyer"],
    )
    assert len(closed.closed_evidence) == 1  # the payment's event
    assert (await recorded_problems(settings().auditor_dsn))[1:] == [
        ("ProblemCured", "october", problem.problem_id, closed.closed_evidence)
    ]
    result = await audit(clean_system.bootstrap, clean_system.dsn)
    assert result.findings == []
    await a_deleted_cure_and_a_resealed_edit_of_a_finding_are_found(clean_system, problem.problem_id)

    listed = await asyncio.to_thread(CliRunner().invoke, app, ["problems", "--format", "jsonl"])  # the command runs its own loop
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["problem_id"], row["state"], row["closed"]) == (problem.problem_id, "closed", "cured in october")


async def a_deleted_cure_and_a_resealed_edit_of_a_finding_are_found(system, problem_id: str) -> None:
    """Tamper with the recorded problems as a forger with database access would: each is the last event of its
    round's stream, so deleting one or resealing its hash breaks no chain link; the audit's supervision check
    finds both."""
    db = await asyncpg.connect(system.dsn)
    try:
        cure = await db.fetchrow("SELECT * FROM pairing.events WHERE event_type = 'ProblemCured'")
        found = await db.fetchrow("SELECT * FROM pairing.events WHERE event_type = 'ProblemFound'")
        await db.execute("DELETE FROM pairing.events WHERE global_position = $1", cure["global_position"])
        edited = {**json.loads(found["payload"]), "owner_team": "nobody"}
        content = hashed_content(**{k: found[k] for k in HASHED if k != "payload"}, payload=edited)
        await db.execute(
            "UPDATE pairing.events SET payload = $2::jsonb, hash = $3 WHERE global_position = $1",
            found["global_position"],
            canonical_json(edited),
            link_hash(found["prev_hash"], content),
        )
        try:
            result = await audit(system.bootstrap, system.dsn, reconcile_kafka=False)
        finally:
            columns = list(cure.keys())
            values = ", ".join(f"${i + 1}" for i in range(len(columns)))
            await db.execute(f"INSERT INTO pairing.events ({', '.join(columns)}) VALUES ({values})", *cure.values())
            await db.execute(
                "UPDATE pairing.events SET payload = $2::jsonb, hash = $3 WHERE global_position = $1",
                found["global_position"],
                found["payload"],
                found["hash"],
            )
    finally:
        await db.close()
    assert sorted((f.check, f.message) for f in result.findings) == [
        (
            "supervision",
            f"problem {problem_id} found otherwise than the log shows: owner_team: recorded 'nobody', the log shows 'Dejiang team'",
        ),
        ("supervision", f"the log shows round october cured problem {problem_id}; it recorded no such event"),
    ]


HASHED = (
    "event_id",
    "event_type",
    "schema_version",
    "stream_id",
    "stream_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "payload",
)
