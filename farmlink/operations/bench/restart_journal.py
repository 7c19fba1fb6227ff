"""The restart bench's journal: one product's synthetic season written straight into a scratch schema the way
the matching service writes it (journal entries, the events the matcher decided, hash links and snapshots), and
what the last book holds."""

from __future__ import annotations

import json
import time
import uuid
from events.stored import NEW_EVENT_COLUMNS
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg

PRODUCT = "chili"
STREAM = f"market-{PRODUCT}"
CHUNK = 20_000
"""Events per COPY."""
SOURCE_TYPE = {
    "Lot": "HarvestRecorded",
    "Order": "OrderPlaced",
    "OrderCancellation": "OrderCancelled",
    "Commitment": "CommitmentMade",
    "MarketPrice": "MarketPriceObserved",
    "Planting": "PlantingRecorded",
}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _lot_payload(fact: Any) -> dict[str, Any]:
    return {
        "lot_id": fact.lot_id,
        "cooperative_id": fact.cooperative_id,
        "county": fact.county,
        "township": fact.township,
        "village": f"village-of-{fact.cooperative_id}",
        "product": fact.product,
        "grade": fact.grade,
        "quantity": str(fact.quantity),
        "available_from": fact.available_from.isoformat(),
        "expires_on": fact.expires_on.isoformat(),
        "contributions": [
            {"household_id": c.household_id, "quantity": str(c.quantity), "registered_poor": c.registered_poor}
            for c in fact.contributions
        ],
    }


def _order_payload(fact: Any) -> dict[str, Any]:
    return {
        "order_id": fact.order_id,
        "buyer_id": fact.buyer_id,
        "product": fact.product,
        "min_grade": fact.min_grade,
        "quantity": str(fact.quantity),
        "limit_price_fen": fact.limit_price_fen,
        "deliver_from": fact.deliver_from.isoformat(),
        "deliver_to": fact.deliver_to.isoformat(),
        "regions": list(fact.regions),
    }


def _cancellation_payload(fact: Any) -> dict[str, Any]:
    return {"order_id": fact.order_id, "buyer_id": "buyer-1", "product": fact.product}


def _commitment_payload(fact: Any) -> dict[str, Any]:
    return {
        "commitment_id": fact.commitment_id,
        "buyer_id": fact.buyer_id,
        "product": fact.product,
        "min_grade": fact.min_grade,
        "floor_price_fen": fact.floor_price_fen,
        "reference_market": fact.reference_market,
        "valid_from": fact.valid_from.isoformat(),
        "valid_to": fact.valid_to.isoformat(),
        "eligible_counties": list(fact.eligible_counties),
        "eligible_cooperatives": list(fact.eligible_cooperatives),
        "cap_quantity": _text(fact.cap_quantity),
        "max_quantity_per_mu": _text(fact.max_quantity_per_mu),
    }


def _price_payload(fact: Any) -> dict[str, Any]:
    return {
        "product": fact.product,
        "grade": fact.grade,
        "market": fact.market,
        "price_fen": fact.price_fen,
        "observed_on": fact.observed_on.isoformat(),
    }


def _planting_payload(fact: Any) -> dict[str, Any]:
    return {
        "planting_id": fact.planting_id,
        "cooperative_id": fact.cooperative_id,
        "county": "Yanhe",
        "township": "Ketian",
        "product": fact.product,
        "area_mu": str(fact.area_mu),
        "expected_yield": "1000",
        "expected_harvest_from": "2020-03-01",
        "expected_harvest_to": "2020-05-01",
        "household_ids": [],
    }


_PAYLOAD_OF: dict[str, Callable[[Any], dict[str, Any]]] = {
    "Lot": _lot_payload,
    "Order": _order_payload,
    "OrderCancellation": _cancellation_payload,
    "Commitment": _commitment_payload,
    "MarketPrice": _price_payload,
    "Planting": _planting_payload,
}


def source_payload(fact: Any) -> tuple[str, dict[str, Any]]:
    """The source event (type, payload) a matcher fact is journaled from, as the services record it (without signature)."""
    kind = type(fact).__name__
    return SOURCE_TYPE[kind], _PAYLOAD_OF[kind](fact)


def one_product_facts(inputs: int, seed: int = 2020):
    """The matcher bench's synthetic season, every input of one product: a deterministic stream of facts."""
    from farmlink.operations.bench.matcher_bench import FIRST_DAY, INPUTS_PER_DAY, KIND_WEIGHTS, KINDS, _Season

    season = _Season(seed)
    for index in range(inputs):
        season.today = FIRST_DAY + index // INPUTS_PER_DAY
        kind = season.rng.choices(KINDS, KIND_WEIGHTS)[0]
        yield getattr(season, "market_price" if kind == "price" else kind)(PRODUCT)


def _event_row(event: Any, version: int, prev: str, at: datetime, source_id: str) -> tuple:
    """One journaled event as a row for COPY into events, linked to the one before (`prev`)."""
    from events.hashchain import canonical_json, hashed_content, link_hash

    model = event.payload
    body = model.model_dump(mode="json")
    fields = dict(
        event_id=event.event_id,
        event_type=model.event_type,
        schema_version=model.schema_version,
        stream_id=STREAM,
        stream_version=version,
        occurred_at=at,
        producer="service:matching",
        correlation_id="bench-restart",
        causation_id=source_id,
        payload=body,
    )
    digest = link_hash(prev, hashed_content(**fields))
    return (
        event.event_id,
        STREAM,
        version,
        model.event_type,
        model.schema_version,
        at,
        "service:matching",
        "bench-restart",
        source_id,
        canonical_json(body),
        prev,
        digest,
    )


def _decided(book: Any, seq: int, fact: Any, at: datetime) -> tuple[str, list[Any]]:
    """The input's journal entry and the events the matcher decides for it, as the matching service makes them."""
    from matcher.journal import fact_from
    from services.matching.outcomes import journal_entry, outcome_event

    source_type, payload = source_payload(fact)
    outcomes = book.process(fact_from(source_type, payload))
    source_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"farmlink-bench-restart/{seq}"))
    return source_id, [
        journal_entry(PRODUCT, seq, source_id, source_type, 1, payload, at),
        *(outcome_event(outcome, index, at) for index, outcome in enumerate(outcomes)),
    ]


async def _insert_snapshots(conn: asyncpg.Connection, schema: str, snapshots: list[dict[str, Any]]) -> None:
    if snapshots:
        await conn.executemany(
            f'INSERT INTO "{schema}".snapshots (product, journal_seq, stream_version, state, digest) VALUES ($1, $2, $3, $4, $5)',
            [(s["product"], s["journal_seq"], s["stream_version"], s["state"], s["digest"]) for s in snapshots],
        )


async def _fresh_schema(conn: asyncpg.Connection, schema: str) -> None:
    """The scratch schema, dropped and migrated as the matching service's own."""
    from events.migrations import migrate
    from events.settings import AUDITOR, settings
    from services.matching import app as matching

    config = settings()
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await migrate(
        conn, schema, matching.runtime.sql_dirs, service_role=config.role_of("matching"), readers=(config.role_of(AUDITOR),)
    )


async def write_journal(dsn: str, schema: str, inputs: int, every: int, say: Callable[..., Any]) -> dict[str, Any]:
    """Journal `inputs` inputs of the product into the scratch schema as the matching service would, with its
    snapshots; returns what was written and what the last book holds."""
    from events.hashchain import GENESIS
    from matcher.book import Book
    from services.matching.snapshots import snapshot_row

    conn = await asyncpg.connect(dsn)
    try:
        await _fresh_schema(conn, schema)
        book = Book(PRODUCT)
        version, prev = 0, GENESIS
        rows: list[tuple] = []
        snapshots: list[dict[str, Any]] = []
        started = time.perf_counter()
        snapshot_s = 0.0
        events = 0
        base = datetime(2020, 3, 1, tzinfo=timezone.utc)
        for seq, fact in enumerate(one_product_facts(inputs), start=1):
            at = base + timedelta(seconds=seq)
            source_id, new_events = _decided(book, seq, fact, at)
            for event in new_events:
                version += 1
                rows.append(_event_row(event, version, prev, at, source_id))
                prev = rows[-1][-1]
            events += len(new_events)
            if every and seq % every == 0:
                taken = time.perf_counter()
                snapshots.append(snapshot_row(book, version))
                snapshot_s += time.perf_counter() - taken
            if len(rows) >= CHUNK:
                await conn.copy_records_to_table("events", schema_name=schema, records=rows, columns=NEW_EVENT_COLUMNS)
                rows = []
                await _insert_snapshots(conn, schema, snapshots)
                snapshots = []
            if seq % 100_000 == 0:
                say(f"  journaled {seq:,} inputs ({events:,} events) in {time.perf_counter() - started:.0f} s")
        if rows:
            await conn.copy_records_to_table("events", schema_name=schema, records=rows, columns=NEW_EVENT_COLUMNS)
        await _insert_snapshots(conn, schema, snapshots)
        await conn.execute(f'ANALYZE "{schema}".events')
        written_s = time.perf_counter() - started
        figures = await _journal_figures(conn, schema, book)
        return {
            "events": events,
            "head_version": version,
            **figures,
            "write_s": round(written_s, 1),
            "snapshot_s": round(snapshot_s, 1),
        }
    finally:
        await conn.close()


async def _journal_figures(conn: asyncpg.Connection, schema: str, book: Any) -> dict[str, Any]:
    """What the last book holds and what its snapshots take."""
    sizes = await conn.fetchrow(
        f"SELECT count(*) AS n, coalesce(sum(length(state)), 0) AS stored, coalesce(max(length(state)), 0) AS largest "
        f'FROM "{schema}".snapshots'
    )
    return {
        "fills": book.fills_so_far,
        "resting_lots": len(book.resting_lots()),
        "open_outlets": len(book.open_outlets()),
        "snapshots": sizes["n"],
        "snapshot_bytes_stored": sizes["stored"],
        "largest_snapshot_bytes_stored": sizes["largest"],
        "last_snapshot_json_bytes": len(_last_json(book)),
    }


def _last_json(book) -> bytes:
    from matcher.snapshot import snapshot_bytes

    return snapshot_bytes(book)


def lot_that_fills(state: dict[str, Any]) -> dict[str, Any]:
    """A new harvest (HarvestRecorded payload) that an open order of the book (a snapshot state) takes: grade A, in the
    window of the latest open order that is not archived (dated like the journal's last inputs), in its region."""
    from matcher.snapshot import ORDER_COLUMNS

    column = {name: index for index, name in enumerate(ORDER_COLUMNS)}
    rows = state["orders"]["rows"]
    if not rows:
        raise RuntimeError("the journal left no open order to fill")
    current = [row for row in rows if not row[column["archived"]]] or rows
    order = max(current, key=lambda row: (not row[column["regions"]], row[column["seq"]]))
    regions = order[column["regions"]]
    place = regions[0] if regions else "Yanhe"
    return {
        "lot_id": f"bench-restart-{uuid.uuid4().hex[:8]}",
        "cooperative_id": "coop-bench",
        "county": place,
        "township": place,
        "village": "bench",
        "product": PRODUCT,
        "grade": "A",
        "quantity": "1.000",
        "available_from": order[column["deliver_from"]],
        "expires_on": order[column["deliver_to"]],
        "contributions": [{"household_id": "coop-bench-h1", "quantity": "1.000", "registered_poor": True}],
    }


async def latest_state(dsn: str, schema: str) -> dict[str, Any]:
    """The state of the product's latest snapshot in the scratch schema."""
    from services.matching.snapshots import snapshot_data

    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval(
            f'SELECT state FROM "{schema}".snapshots WHERE product = $1 ORDER BY journal_seq DESC LIMIT 1', PRODUCT
        )
        return json.loads(snapshot_data(state))
    finally:
        await conn.close()


async def existing_journal(dsn: str, schema: str, inputs: int) -> dict[str, Any] | None:
    """What an earlier run left in the scratch schema, if it is a journal of exactly `inputs` inputs."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.snapshots"):
            return None
        info = await conn.fetchval("SELECT obj_description(to_regclass($1), 'pg_class')", f"{schema}.snapshots")
        found = json.loads(info) if info else None
        return found if found and found.get("inputs") == inputs else None
    finally:
        await conn.close()


async def remember_journal(dsn: str, schema: str, figures: dict[str, Any]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        text = json.dumps(figures).replace("'", "''")
        await conn.execute(f"COMMENT ON TABLE \"{schema}\".snapshots IS '{text}'")
    finally:
        await conn.close()
