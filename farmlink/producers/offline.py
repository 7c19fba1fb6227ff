"""What the rules give for a scenario, without Kafka or PostgreSQL: the services' own handlers
(their `HANDLERS` maps) and the matching service's, run in file order in one process on
in-memory units of work (events.unit.MemoryUnitOfWork), so there is no second copy of any rule.

Used by `farmlink simulate`, `farmlink bench scenario` and the end-to-end tests, which check that
the live system (publish through Kafka, services, PostgreSQL) makes exactly these fills.

Each line is signed as `farmlink publish` signs it, with a throwaway keyring of this run (a
registration that names a public key is given the throwaway one instead, as offline nothing can
sign for someone else's key), so the services' signature checks pass for every line the publisher
would send; the rules that depend on who is registered are the services' own.
"""

import tempfile
from collections.abc import Iterable
from pathlib import Path

from contracts.inputs import INPUT_KIND, KEY_ROTATION_TYPES, REGISTRATION_TYPES
from events.consumer import Delivery
from events.store import envelope_bytes
from events.unit import MemoryUnitOfWork
from events.handling import decide_one
from farmlink.producers.keyring import Keyring
from farmlink.producers.publisher import implied_registration, input_message
from farmlink.producers.scenario import LineError, ScenarioLine
from matcher.book import Book
from matcher.facts import Fill
from services.buyer import app as buyer
from services.cooperative import app as cooperative
from services.market import app as market
from services.matching import app as matching

SERVICES = {"cooperative": cooperative, "buyer": buyer, "market": market}
"""The services whose inputs can reach the matcher (settlement's cannot change a fill)."""


class _RecordingBook(Book):
    """A book that also hands every fill it makes to a list shared by all products (the output order)."""

    def __init__(self, product: str, fills: list[Fill]):
        super().__init__(product)
        self._fills = fills

    def process(self, fact):
        outcomes = super().process(fact)
        self._fills.extend(outcome for outcome in outcomes if isinstance(outcome, Fill))
        return outcomes


def simulate(lines: Iterable[ScenarioLine | LineError]) -> list[Fill]:
    """Every fill the matcher makes for these lines, in output order (rejected lines are skipped)."""
    with tempfile.TemporaryDirectory(prefix="farmlink-simulate-keys-") as keys:
        keyring = Keyring(Path(keys))
        units = {name: MemoryUnitOfWork(name, f"service:{name}", lambda envelope: None) for name in SERVICES}
        matcher_unit = MemoryUnitOfWork("matching", "service:matching", lambda envelope: None)
        fills: list[Fill] = []
        known_parties: set[str] = set()
        for line in lines:
            if isinstance(line, LineError) or INPUT_KIND[line.type].owner not in SERVICES:
                continue
            payload = dict(line.payload)
            if line.type in REGISTRATION_TYPES or line.type in KEY_ROTATION_TYPES:
                payload["public_key"] = None  # the throwaway key of this run signs it (see the module's docstring)
            service = SERVICES[INPUT_KIND[line.type].owner]
            implied = implied_registration(line.type, payload, known_parties)
            if implied is not None:  # as `farmlink publish` registers a price feed a file did not
                message = input_message(
                    *implied, f"simulate:implied-{line.line_no}", keyring, message_id=f"implied-{line.line_no}"
                )
                decide_one(
                    units[service.SERVICE],
                    service.CONSUMER,
                    Delivery("simulate", 0, line.line_no, None, message.model_dump_json().encode(), []),
                )
            message = input_message(line.type, payload, f"simulate:{line.line_no}", keyring, message_id=f"line-{line.line_no}")
            delivery = Delivery("simulate", 0, line.line_no, None, message.model_dump_json().encode(), [])
            events, accepted = decide_one(units[service.SERVICE], service.CONSUMER, delivery)
            if not accepted:
                continue
            for event in events:
                if event.event_type not in matching.JOURNALED_TYPES:
                    continue
                product = event.payload["product"]
                if matcher_unit.get(matching.BOOK, product) is None:
                    matcher_unit.load(matching.BOOK, {product: matching.LiveBook(_RecordingBook(product, fills), 0)})
                decide_one(
                    matcher_unit, matching.CONSUMER, Delivery("simulate", 0, line.line_no, None, envelope_bytes(event), [])
                )
        return fills
