"""What the rules give for a scenario, without Kafka or PostgreSQL: the services' own decide
functions and the pure matcher, run in file order in one process.

Used by `farmlink simulate` and by the end-to-end tests, which check that the live system
(publish through Kafka, services, PostgreSQL) makes exactly these fills.

Signatures are not simulated: `farmlink publish` signs every cooperative and buyer line with
its producer's own key and gives a registration without a public key that key, so a line the
publisher sends never fails on its signature. The rules that depend on who is registered
(unknown cooperative or buyer, a cancellation by a buyer who does not own the order) are the
services' own domain functions, run here the same way.
"""

from collections.abc import Iterable

from contracts.inputs import (
    BuyerRegistration,
    CommitmentOffer,
    CooperativeRegistration,
    HarvestReport,
    MarketPriceReport,
    OrderCancellationRequest,
    OrderPlacement,
    PlantingReport,
)
from contracts.market import MarketPriceObserved
from events.consumer import Rejection
from farmlink.scenario import LineError, ScenarioLine
from contracts.signing import PublicKey
from matcher.book import Market
from matcher.facts import Fill
from matcher.journal import fact_from
from services.buyer import domain as buyer
from services.cooperative import domain as cooperative


PUBLISHED_KEY: PublicKey = "A" * 43
"""Stands in for the key `farmlink publish` gives a registration that names none (its value never matters offline)."""


def _as_published(report):
    """A registration as the publisher sends it: with a public key."""
    if isinstance(report, CooperativeRegistration | BuyerRegistration) and report.public_key is None:
        return report.model_copy(update={"public_key": PUBLISHED_KEY})
    return report


def simulate(lines: Iterable[ScenarioLine | LineError]) -> list[Fill]:
    """Every fill the matcher makes for these lines, in output order (rejected lines are skipped)."""
    cooperatives: dict[str, cooperative.Cooperative] = {}
    household_owner: dict[str, str] = {}
    recorded: set[str] = set()
    orders: dict[str, buyer.KnownOrder] = {}
    buyers: set[str] = set()
    market = Market()
    fills: list[Fill] = []
    for line in lines:
        if isinstance(line, LineError):
            continue
        report = _as_published(line.model)
        try:
            event = _decide(report, cooperatives, household_owner, recorded, orders, buyers)
        except Rejection:
            continue
        if event is None:
            continue
        fact = fact_from(event.event_type, event.model_dump(mode="json"))  # type: ignore[attr-defined]
        fills += [outcome for outcome in market.process(fact) if isinstance(outcome, Fill)]
    return fills


def _decide(report, cooperatives, household_owner, recorded, orders, buyers):
    if isinstance(report, CooperativeRegistration):
        cooperative.register(report, report.cooperative_id in cooperatives, household_owner)
        cooperatives[report.cooperative_id] = cooperative.Cooperative(
            report.cooperative_id, report.county, report.township, report.village,
            {h.household_id: h.registered_poor for h in report.households},
        )
        household_owner.update({h.household_id: report.cooperative_id for h in report.households})
        return None
    if isinstance(report, PlantingReport):
        event = cooperative.record_planting(report, cooperatives.get(report.cooperative_id), f"planting-{report.planting_id}" in recorded)
        recorded.add(f"planting-{report.planting_id}")
        return event
    if isinstance(report, HarvestReport):
        event = cooperative.record_harvest(report, cooperatives.get(report.cooperative_id), f"lot-{report.lot_id}" in recorded)
        recorded.add(f"lot-{report.lot_id}")
        return event
    if isinstance(report, BuyerRegistration):
        buyer.register_buyer(report, report.buyer_id in buyers)
        buyers.add(report.buyer_id)
        return None
    if isinstance(report, OrderPlacement):
        event = buyer.place_order(report, report.order_id in orders, report.buyer_id in buyers)
        orders[report.order_id] = buyer.KnownOrder(report.order_id, report.buyer_id, report.product, False)
        return event
    if isinstance(report, OrderCancellationRequest):
        if report.buyer_id not in buyers:
            raise Rejection(f"payload.buyer_id: unknown buyer {report.buyer_id}")
        event = buyer.cancel_order(report, orders.get(report.order_id))
        orders[report.order_id] = buyer.KnownOrder(event.order_id, event.buyer_id, event.product, True)
        return event
    if isinstance(report, CommitmentOffer):
        event = buyer.make_commitment(report, f"commitment-{report.commitment_id}" in recorded, report.buyer_id in buyers)
        recorded.add(f"commitment-{report.commitment_id}")
        return event
    if isinstance(report, MarketPriceReport):
        return MarketPriceObserved(**report.model_dump())
    return None
