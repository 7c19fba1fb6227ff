"""The market-price service app: one stream of observations per product."""

from collections.abc import Sequence

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.inputs import MarketPriceReport
from contracts.market import MarketPriceObserved
from contracts.topics import MARKET_INPUT
from events.codec import decode_input
from events.consumer import Decoded, ids_of, input_handler, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Consumer, consume_batch

SERVICE = "market"
runtime = ServiceRuntime(SERVICE)
app = runtime.app


def price_stream(product: str) -> str:
    return f"market-price-{product}"


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """The heads of the price streams the batch appends to."""
    await uow.load_heads(conn, [price_stream(item.item[1].product) for item in items if isinstance(item.item[1], MarketPriceReport)])


def observe_price(uow: BatchUnitOfWork, decoded: Decoded, message, report: MarketPriceReport) -> None:
    observed = MarketPriceObserved(**report.model_dump())
    uow.append(price_stream(observed.product), [NewEvent(observed)], None, **ids_of(decoded))


HANDLERS = {MarketPriceReport: observe_price}


handle = input_handler(SERVICE, HANDLERS)
"""Record the observation on its product's price stream; then tell the producer."""


CONSUMER = Consumer(SERVICE, decode_input, handle, load, rejected_receipt(SERVICE), skip_markers=True)


@runtime.subscriber(MARKET_INPUT)
async def on_market_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))
