"""The market-price service app: registers each market's price feed and records the prices it signs,
one stream of observations per product."""

from collections.abc import Sequence

import asyncpg
from faststream.kafka import KafkaMessage

from contracts.inputs import MarketPriceReport, PriceFeedRegistration
from contracts.market import MarketPriceObserved, PriceFeedRegistered
from contracts.parties import PRICE_FEED
from contracts.topics import MARKET_INPUT
from events.authentication import authenticate_party, key_handlers, key_streams, load_keys, producers_of, register_party
from events.codec import decode_input
from events.consumer import Decoded, ids_of, input_handler, rejected_receipt
from events.runtime import ServiceRuntime, deliveries_of, require_store
from events.store import NewEvent
from events.unit import BatchUnitOfWork
from events.handling import Consumer, consume_batch

SERVICE = "market"
runtime = ServiceRuntime(SERVICE)
app = runtime.app


def price_stream(product: str) -> str:
    return f"market-price-{product}"


def feed_stream(market: str) -> str:
    return f"price-feed-{market}"


async def load(conn: asyncpg.Connection, uow: BatchUnitOfWork, items: Sequence[Decoded]) -> None:
    """The feeds' keys and the heads of the streams the batch appends to."""
    requests = [item.item[1] for item in items]
    await load_keys(conn, uow, producers_of(items))
    await uow.load_heads(
        conn,
        [
            *(price_stream(r.product) for r in requests if isinstance(r, MarketPriceReport)),
            *(feed_stream(r.market) for r in requests if isinstance(r, PriceFeedRegistration)),
            *key_streams(items),
        ],
    )


def register_feed(uow: BatchUnitOfWork, decoded: Decoded, message, registration: PriceFeedRegistration) -> None:
    register_party(
        uow,
        decoded,
        message,
        PRICE_FEED,
        registration.market,
        registration.public_key,
        lambda key: PriceFeedRegistered(market=registration.market, name=registration.name, public_key=key),
        feed_stream(registration.market),
    )


def observe_price(uow: BatchUnitOfWork, decoded: Decoded, message, report: MarketPriceReport) -> None:
    evidence = authenticate_party(
        uow,
        message,
        PRICE_FEED,
        report.market,
        unknown="; a market's price feed registers (price_feed.registered) before it reports prices",
    )
    observed = MarketPriceObserved(**report.model_dump(), signed_input=evidence)
    uow.append(price_stream(observed.product), [NewEvent(observed)], None, **ids_of(decoded))


HANDLERS = {PriceFeedRegistration: register_feed, MarketPriceReport: observe_price, **key_handlers(PRICE_FEED)}


handle = input_handler(SERVICE, HANDLERS)
"""Register a feed, or record an observation its feed signed on its product's price stream; then tell the producer."""


CONSUMER = Consumer(SERVICE, decode_input, handle, load, rejected_receipt(SERVICE), skip_markers=True)


@runtime.subscriber(MARKET_INPUT)
async def on_market_input(body: list[bytes], message: KafkaMessage) -> None:
    await consume_batch(require_store(runtime), CONSUMER, deliveries_of(message))
