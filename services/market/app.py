"""The market-price service app: one stream of observations per product."""

from faststream.kafka import KafkaMessage

from contracts.inputs import MarketPriceReport
from contracts.market import MarketPriceObserved
from contracts.topics import MARKET_INPUT
from events.codec import decode_input
from events.consumer import Decoded, Rejection, accepted, consume_batch, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent, UnitOfWork

SERVICE = "market"
runtime = ServiceRuntime(SERVICE)
app = runtime.app


async def handle(uow: UnitOfWork, decoded: Decoded) -> None:
    """Record the observation on its product's price stream; then tell the producer."""
    message, report = decoded.item
    if not isinstance(report, MarketPriceReport):
        raise Rejection(f"type: {message.type} is not a market input")
    observed = MarketPriceObserved(**report.model_dump())
    await uow.append(
        f"market-price-{observed.product}",
        [NewEvent(observed)],
        None,
        correlation_id=decoded.correlation_id,
        causation_id=decoded.message_id,
    )
    await accepted(uow, decoded, SERVICE)


@runtime.subscriber(MARKET_INPUT)
async def on_market_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), SERVICE, deliveries_of(message), decode_input, handle, rejected_receipt(SERVICE))
