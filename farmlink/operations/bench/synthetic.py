"""A synthetic but honest log: what the services would have recorded for a long random season.

Source events are the services' own contract models; the matcher's journal and decisions
come from the same pure engine and outcome mapping the matching service uses; payments
are split by the same largest-remainder rule; every stream carries a correct hash chain.
Every cooperative and buyer event carries the signed input it would have been recorded
from, signed with that producer's (seeded, reproducible) key, as the audit expects.
Written straight into a set of schemas with COPY, so a million events take a minute,
not hours of publishing.
"""

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

from contracts.buyer import BuyerRegistered, CommitmentMade, OrderCancelled, OrderPlaced
from contracts.cooperative import Contribution, CooperativeRegistered, HarvestRecorded, PlantingRecorded
from contracts.inputs import INPUT_KINDS, INPUT_TYPES, ContributionReport, HouseholdMembership, producer_of
from contracts.market import MarketPriceObserved, PriceFeedRegistered
from contracts.model import Contract
from contracts.parties import DEFAULT_DESK
from contracts.settlement import PaymentMade, SettlementDeskRegistered
from contracts.signing import SignedInput, private_key_from_raw, public_key_of, sign
from matcher.book import Market
from matcher.facts import Fill
from matcher.journal import fact_from
from matcher.money import split_largest_remainder
from services.matching.outcomes import journal_entry, outcome_event

from farmlink.operations.bench.synthetic_log import SyntheticLog
from farmlink.operations.workload import COUNTIES, MARKETS, PRODUCTS

SEASON_START = date(2020, 3, 1)
BUYERS = tuple(f"buyer-{n}" for n in range(1, 51)) + tuple(f"yuping-{n}" for n in range(1, 6))

INPUT_OF = {kind.records: kind.type for kind in INPUT_KINDS}


def input_payload(input_type: str, event: dict) -> dict:
    """The payload of the input an event was recorded from: the input model's fields of the event."""
    fields = INPUT_TYPES[input_type].model_fields
    payload = {name: value for name, value in event.items() if name in fields}
    if "contributions" in payload:
        payload["contributions"] = [{k: c[k] for k in ContributionReport.model_fields} for c in payload["contributions"]]
    return INPUT_TYPES[input_type].model_validate(payload).model_dump(mode="json")


class Season:
    """Drives the synthetic season: cooperatives, plantings, lots, orders, commitments, prices, payments."""

    def __init__(self, seed: int = 2020):
        random.seed(seed)
        self.rng = random.Random(seed)
        self.log = SyntheticLog()
        self.market = Market()
        self.journal_seq: dict[str, int] = {}
        self.cooperatives: list[tuple[str, str, str, str, list[tuple[str, bool]]]] = []
        self.lots: dict[str, dict[str, Decimal]] = {}
        self.orders: list[tuple[str, str, str]] = []
        self.counter = 0
        self.keys: dict[str, object] = {}

    def _key(self, producer: str):
        if producer not in self.keys:
            self.keys[producer] = private_key_from_raw(self.rng.randbytes(32))
        return self.keys[producer]

    def _signed(self, model: Contract) -> tuple[Contract, str]:
        """The event with the evidence of the input its producer signed, and that input's message id."""
        input_type = INPUT_OF[model.event_type]  # type: ignore[attr-defined]
        event = model.model_dump(mode="json")
        producer = producer_of(input_type, event)
        message = {
            "message_id": uuid.UUID(int=self.rng.getrandbits(128), version=4).hex,
            "type": input_type,
            "producer": producer,
            "correlation_id": "synthetic",
            "payload": input_payload(input_type, event),
        }
        message["signature"] = sign(self._key(producer), message)
        return model.model_copy(update={"signed_input": SignedInput.of(message)}), message["message_id"]

    def _record(self, schema: str, stream_id: str, model: Contract) -> str:
        """Append an event with the evidence of its party's signed input."""
        signed, message_id = self._signed(model)
        return self.log.append(schema, stream_id, signed, causation_id=message_id)

    def _id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.counter}"

    def _day(self, spread: int = 240) -> date:
        return SEASON_START + timedelta(days=self.rng.randint(0, spread))

    def _journal(self, schema: str, stream_id: str, model: Contract) -> None:
        """Record a source event, then journal it and record what the matcher decided, as the matching service does."""
        source_id = self._record(schema, stream_id, model)
        at = self.log.last_at
        payload = model.model_dump(mode="json", exclude={"signed_input"})
        product = payload["product"]
        outcomes = self.market.process(fact_from(model.event_type, payload))  # type: ignore[attr-defined]
        seq = self.journal_seq[product] = self.journal_seq.get(product, 0) + 1
        entry = journal_entry(product, seq, source_id, model.event_type, model.schema_version, payload, at)  # type: ignore[attr-defined]
        self.log.append("matching", f"market-{product}", entry.payload, event_id=entry.event_id, causation_id=source_id, at=at)
        self.log.inputs += 1
        for index, outcome in enumerate(outcomes):
            event = outcome_event(outcome, index, at)
            self.log.append(
                "matching", f"market-{product}", event.payload, event_id=event.event_id, causation_id=source_id, at=at
            )
            if isinstance(outcome, Fill):
                self.log.fills += 1
                self._maybe_pay(outcome)

    def _maybe_pay(self, fill: Fill) -> None:
        if self.rng.random() < 0.5 or fill.revenue_fen == 0:
            return
        contributions = self.lots[fill.lot_id]
        amount = fill.revenue_fen if self.rng.random() < 0.7 else fill.revenue_fen // 2 or fill.revenue_fen
        shares = split_largest_remainder(amount, sorted(contributions.items()))
        payment = PaymentMade(
            lot_id=fill.lot_id,
            outlet_id=fill.outlet_id,
            buyer_id=fill.buyer_id,
            product=fill.product,
            cooperative_id=fill.cooperative_id,
            amount_fen=amount,
            household_income_fen=dict(shares),
        )
        self._record("settlement", f"settlement-{fill.lot_id}-{fill.outlet_id}", payment)

    def register_cooperatives(self, count: int) -> None:
        for n in range(count):
            county = self.rng.choice(sorted(COUNTIES))
            township = self.rng.choice(COUNTIES[county])
            cooperative_id = f"coop-{n}"
            households = [(f"{cooperative_id}-h{h}", self.rng.random() < 0.6) for h in range(self.rng.randint(2, 6))]
            self.cooperatives.append((cooperative_id, county, township, f"village-{n}", households))
            self._record(
                "cooperative",
                f"cooperative-{cooperative_id}",
                CooperativeRegistered(
                    cooperative_id=cooperative_id,
                    name=f"cooperative {n}",
                    county=county,
                    township=township,
                    village=f"village-{n}",
                    households=tuple(HouseholdMembership(household_id=h, registered_poor=p) for h, p in households),
                    public_key=public_key_of(self._key(f"cooperative:{cooperative_id}")),
                ),
            )

    def register_feeds_and_desk(self) -> None:
        """The markets' price feeds and the settlement desk, each with its own key."""
        for market in MARKETS:
            self._record(
                "market",
                f"price-feed-{market}",
                PriceFeedRegistered(
                    market=market, name=f"{market} market", public_key=public_key_of(self._key(f"price-feed:{market}"))
                ),
            )
        self._record(
            "settlement",
            f"settlement-desk-{DEFAULT_DESK}",
            SettlementDeskRegistered(
                desk_id=DEFAULT_DESK,
                name="county settlement desk",
                public_key=public_key_of(self._key(f"settlement-desk:{DEFAULT_DESK}")),
            ),
        )

    def register_buyers(self) -> None:
        for buyer_id in BUYERS:
            self._record(
                "buyer",
                f"buyer-{buyer_id}",
                BuyerRegistered(
                    buyer_id=buyer_id, name=f"buyer {buyer_id}", public_key=public_key_of(self._key(f"buyer:{buyer_id}"))
                ),
            )

    def planting(self) -> None:
        cooperative_id, county, township, _, households = self.rng.choice(self.cooperatives)
        planting_id = self._id("planting")
        start = self._day(120)
        self._journal(
            "cooperative",
            f"planting-{planting_id}",
            PlantingRecorded(
                planting_id=planting_id,
                cooperative_id=cooperative_id,
                county=county,
                township=township,
                product=self.rng.choice(PRODUCTS),
                area_mu=Decimal(self.rng.randint(5, 200)),
                expected_yield=Decimal(1000),
                expected_harvest_from=start,
                expected_harvest_to=start + timedelta(days=60),
                household_ids=tuple(h for h, _ in households),
            ),
        )

    def lot(self) -> None:
        cooperative_id, county, township, village, households = self.rng.choice(self.cooperatives)
        lot_id = self._id("lot")
        members = households[: self.rng.randint(1, len(households))]
        parts = {h: Decimal(self.rng.randint(10, 900)) + Decimal(self.rng.randint(0, 999)) / 1000 for h, _ in members}
        self.lots[lot_id] = parts
        start = self._day()
        self._journal(
            "cooperative",
            f"lot-{lot_id}",
            HarvestRecorded(
                lot_id=lot_id,
                cooperative_id=cooperative_id,
                county=county,
                township=township,
                village=village,
                product=self.rng.choice(PRODUCTS),
                grade=self.rng.choice("ABC"),
                quantity=sum(parts.values()),
                available_from=start,
                expires_on=start + timedelta(days=self.rng.randint(3, 30)),
                contributions=tuple(
                    Contribution(household_id=h, quantity=q, registered_poor=p) for (h, p), q in zip(members, parts.values())
                ),
            ),
        )

    def order(self) -> None:
        order_id = self._id("order")
        product = self.rng.choice(PRODUCTS)
        start = self._day()
        regions = self.rng.choice([(), ("Yanhe",), ("Ketian", "Tangba"), ("Yuping",)])
        self.orders.append((order_id, "buyer-" + str(self.rng.randint(1, 50)), product))
        self._journal(
            "buyer",
            f"order-{order_id}",
            OrderPlaced(
                order_id=order_id,
                buyer_id=self.orders[-1][1],
                product=product,
                min_grade=self.rng.choice("ABC"),
                quantity=Decimal(self.rng.randint(50, 3000)),
                limit_price_fen=self.rng.randint(300, 1200),
                deliver_from=start,
                deliver_to=start + timedelta(days=self.rng.randint(5, 40)),
                regions=regions,
            ),
        )

    def cancellation(self) -> None:
        if not self.orders:
            return
        order_id, buyer_id, product = self.orders.pop(self.rng.randrange(len(self.orders)))
        self._journal("buyer", f"order-{order_id}", OrderCancelled(order_id=order_id, buyer_id=buyer_id, product=product))

    def commitment(self) -> None:
        commitment_id = self._id("commitment")
        start = self._day(200)
        self._journal(
            "buyer",
            f"commitment-{commitment_id}",
            CommitmentMade(
                commitment_id=commitment_id,
                buyer_id="yuping-" + str(self.rng.randint(1, 5)),
                product=self.rng.choice(PRODUCTS),
                min_grade=self.rng.choice("ABC"),
                floor_price_fen=self.rng.randint(300, 900),
                reference_market="Tongren",
                valid_from=start,
                valid_to=start + timedelta(days=self.rng.randint(10, 60)),
                eligible_counties=self.rng.choice([(), ("Yanhe",)]),
                eligible_cooperatives=(),
                cap_quantity=Decimal(self.rng.randint(1000, 20000)),
                max_quantity_per_mu=self.rng.choice([None, Decimal(400)]),
            ),
        )

    def price(self) -> None:
        self._journal(
            "market",
            f"market-price-{self.rng.choice(PRODUCTS)}",
            MarketPriceObserved(
                product=self.rng.choice(PRODUCTS),
                grade=self.rng.choice("ABC"),
                market=self.rng.choice(MARKETS),
                price_fen=self.rng.randint(250, 1100),
                observed_on=self._day(),
            ),
        )

    def run(self, target_events: int) -> SyntheticLog:
        self.register_cooperatives(max(20, target_events // 2000))
        self.register_buyers()
        self.register_feeds_and_desk()
        for _ in range(len(self.cooperatives)):
            self.planting()
        steps = (self.lot, self.order, self.price, self.commitment, self.cancellation, self.planting)
        weights = (40, 36, 12, 3, 5, 4)
        while self.log.count < target_events:
            self.rng.choices(steps, weights)[0]()
        return self.log


def generate(target_events: int, seed: int = 2020) -> SyntheticLog:
    """A season's log of at least `target_events` events. The same seed gives the same season: a
    shorter log is the start of a longer one (what incremental audits are tested with)."""
    return Season(seed).run(target_events)
