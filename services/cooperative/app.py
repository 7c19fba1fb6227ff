"""The cooperative service app: consumes the cooperative input topic, records events."""

from pathlib import Path

from contracts.cooperative import CooperativeRegistered
from contracts.inputs import CooperativeRegistration, HarvestReport, PlantingReport
from contracts.topics import COOPERATIVE_INPUT
from events.codec import decode_input
from events.consumer import Decoded, Rejection, accepted, consume_batch, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent, UnitOfWork
from faststream.kafka import KafkaMessage
from services.cooperative import domain

SERVICE = "cooperative"
runtime = ServiceRuntime(SERVICE, Path(__file__).parent / "sql")
app = runtime.app


async def load_cooperative(uow: UnitOfWork, cooperative_id: str) -> domain.Cooperative | None:
    row = await uow.conn.fetchrow("SELECT * FROM cooperatives WHERE cooperative_id = $1", cooperative_id)
    if row is None:
        return None
    households = await uow.conn.fetch(
        "SELECT household_id, registered_poor FROM households WHERE cooperative_id = $1", cooperative_id
    )
    return domain.Cooperative(
        cooperative_id, row["county"], row["township"], row["village"], {h["household_id"]: h["registered_poor"] for h in households}
    )


async def registered_key(uow: UnitOfWork, cooperative_id: str) -> str | None:
    return await uow.conn.fetchval("SELECT public_key FROM cooperatives WHERE cooperative_id = $1", cooperative_id)


async def stream_exists(uow: UnitOfWork, stream_id: str) -> bool:
    return await uow.conn.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)", stream_id)


async def handle(uow: UnitOfWork, decoded: Decoded) -> None:
    """Decode, load, decide, append; then tell the producer."""
    message, report = decoded.item
    ids = dict(correlation_id=decoded.correlation_id, causation_id=decoded.message_id)
    if isinstance(report, CooperativeRegistration):
        evidence = domain.authenticate_registration(message, report)
        taken = {
            r["household_id"]: r["cooperative_id"]
            for r in await uow.conn.fetch(
                "SELECT household_id, cooperative_id FROM households WHERE household_id = ANY($1::text[])",
                [h.household_id for h in report.households],
            )
        }
        exists = await load_cooperative(uow, report.cooperative_id) is not None
        event = domain.register(report, exists, taken).model_copy(update={"signed_input": evidence})
        await uow.append(f"cooperative-{report.cooperative_id}", [NewEvent(event)], 0, **ids)
        await project_registration(uow, event)
    elif isinstance(report, PlantingReport):
        evidence = domain.authenticate(message, report.cooperative_id, await registered_key(uow, report.cooperative_id))
        stream = f"planting-{report.planting_id}"
        cooperative = await load_cooperative(uow, report.cooperative_id)
        event = domain.record_planting(report, cooperative, await stream_exists(uow, stream)).model_copy(update={"signed_input": evidence})
        await uow.append(stream, [NewEvent(event)], 0, **ids)
    elif isinstance(report, HarvestReport):
        evidence = domain.authenticate(message, report.cooperative_id, await registered_key(uow, report.cooperative_id))
        stream = f"lot-{report.lot_id}"
        cooperative = await load_cooperative(uow, report.cooperative_id)
        event = domain.record_harvest(report, cooperative, await stream_exists(uow, stream)).model_copy(update={"signed_input": evidence})
        await uow.append(stream, [NewEvent(event)], 0, **ids)
    else:
        raise Rejection(f"type: {message.type} is not a cooperative input")
    await accepted(uow, decoded, SERVICE)


async def project_registration(uow: UnitOfWork, event: CooperativeRegistered) -> None:
    await uow.conn.execute(
        "INSERT INTO cooperatives (cooperative_id, name, county, township, village, public_key) VALUES ($1, $2, $3, $4, $5, $6)",
        event.cooperative_id,
        event.name,
        event.county,
        event.township,
        event.village,
        event.public_key,
    )
    await uow.conn.executemany(
        "INSERT INTO households VALUES ($1, $2, $3)",
        [(h.household_id, event.cooperative_id, h.registered_poor) for h in event.households],
    )


@runtime.subscriber(COOPERATIVE_INPUT)
async def on_cooperative_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_input, handle, rejected_receipt(SERVICE))
