"""`farmlink bench scenario`: `farmlink publish` of a generated scenario through all five services.

The scenario has every input type: cooperative and buyer registrations, plantings, harvests,
orders, cancellations, commitments, market prices and plans (the chaos run's workload), and,
after each third of it, a delivery and a payment for every fill the rules make by then
(found offline with `farmlink simulate`'s code). The figure is lines per second from the first
send until every line has its outcome (the publisher waits for that). It then checks that every
line has exactly one outcome, that each product's fills equal the offline rules' byte for byte
(the journal order per product is the file's), and that fen paid equals fen in household incomes.
"""

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from farmlink.buyers import reports
from farmlink.operations.workload import Workload, payment
from farmlink.operations.caughtup import wait_until_caught_up
from farmlink.producers.offline import simulate
from farmlink.producers.publisher import publish_lines
from farmlink.producers.scenario import ScenarioLine, parse_line
from matcher.output import fill_line


def generate(lines: int, seed: int = 2020) -> list[str]:
    """About `lines` scenario lines (JSON text), every input type, settlement after each third (the
    last third's deliveries and payments come on top of `lines`)."""
    workload = Workload(f"scn{seed}", seed, cooperatives=30)
    body = [*workload.registrations()]
    target = max(lines * 3 // 4, len(body) + 30)  # a delivery and a payment per fill make up the rest
    settled: set[tuple[str, str]] = set()
    thirds = [len(body) + (target - len(body)) * k // 3 for k in (1, 2, 3)]
    for end in thirds:
        while len(body) < end:
            body.append(workload.next_input())
        parsed = [parse_line(i, json.dumps({"type": t, "payload": p})) for i, (t, p) in enumerate(body, start=1)]
        for fill in simulate(parsed):
            pair = (fill.lot_id, fill.outlet_id)
            if pair in settled:
                continue
            settled.add(pair)
            body.append(
                ("delivery.confirmed", {"lot_id": fill.lot_id, "outlet_id": fill.outlet_id, "quantity": str(fill.quantity)})
            )
            body.append(payment(fill.lot_id, fill.outlet_id, fill.revenue_fen))
    return [json.dumps({"type": t, "payload": p}, ensure_ascii=False) for t, p in body]


def _by_product(fills: list[tuple[str, str]]) -> list[str]:
    return [line for _, line in sorted(fills, key=lambda f: f[0])]


async def _recorded(dsn: str) -> tuple[list[str], Any, Any]:
    """What the services recorded: fill lines per product, fen paid and fen credited to incomes."""
    conn = await asyncpg.connect(dsn)
    try:
        live = _by_product(
            [
                (f["product"], json.dumps(reports.fill_output(f), ensure_ascii=False, separators=(",", ":")))
                for f in await reports.recorded_fills(conn)
            ]
        )
        paid = await conn.fetchval("""SELECT coalesce(sum((payload->>'amount_fen')::bigint), 0) FROM settlement.events
                                      WHERE event_type = 'PaymentMade'""")
        credited = await conn.fetchval("SELECT coalesce(sum(paid_fen), 0) FROM settlement.incomes")
    finally:
        await conn.close()
    return live, paid, credited


async def run_scenario_bench(
    bootstrap: str, dsn: str, lines: int = 3000, smoke: bool = False, say=print, keep: Path | None = None
) -> dict[str, Any]:
    """Publish a generated scenario on the running services (the caller starts them on clean data)."""
    if smoke:
        lines = 150
    text = generate(lines)
    if keep is not None:
        keep.write_text("\n".join(text) + "\n", encoding="utf-8")
    parsed = [parse_line(i, t) for i, t in enumerate(text, start=1)]
    kinds = Counter(line.type for line in parsed if isinstance(line, ScenarioLine))
    say(f"scenario: {len(parsed)} lines: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    outcomes: Counter = Counter()
    started = time.perf_counter()
    summary = await publish_lines(bootstrap, parsed, on_line=lambda line, reason: outcomes.update([line.line_no]))
    elapsed = time.perf_counter() - started
    rate = len(parsed) / elapsed
    say(
        f"published {len(parsed)} lines in {elapsed:.2f} s: {rate:,.0f} lines/s "
        f"({summary.accepted} accepted, {len(summary.rejected)} rejected)"
    )
    await wait_until_caught_up(bootstrap, dsn, timeout=300)
    live, paid, credited = await _recorded(dsn)
    offline = _by_product([(fill.product, fill_line(fill)) for fill in simulate(parsed)])
    one_outcome_each = sorted(outcomes) == list(range(1, len(parsed) + 1)) and max(outcomes.values()) == 1
    figures = {
        "lines": len(parsed),
        "seconds": round(elapsed, 2),
        "lines_per_s": round(rate),
        "accepted": summary.accepted,
        "rejected": len(summary.rejected),
        "kinds": dict(kinds),
        "one_outcome_per_line": one_outcome_each,
        "fills_live": len(live),
        "fills_offline": len(offline),
        "live_equals_offline": live == offline,
        "fen_paid": int(paid),
        "fen_in_incomes": int(credited),
        "goal_lines_per_s": 1000,
        "goal_met": rate >= 1000,
    }
    say(
        f"every line one outcome: {one_outcome_each}; fills live = offline per product: {live == offline} "
        f"({len(live)} fills); fen paid {int(paid):,} = incomes {int(credited):,}: {paid == credited}"
    )
    say(f"goal: at least 1,000 lines/s: {'met' if figures['goal_met'] else 'not met'}")
    if not (one_outcome_each and live == offline and paid == credited):
        raise RuntimeError("the published scenario did not give the offline rules' outcome: see above")
    return figures
