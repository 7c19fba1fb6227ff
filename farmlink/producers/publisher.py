"""`farmlink publish`: send scenario lines through each owning service's input topic, as that
producer, so that the matcher's journal order equals the file order, without waiting for a
receipt per line.

- Every line of a run is keyed by the run id, so each service's lines travel one partition
  and the service handles them in file order (registrations before what uses them).
- Every line the matcher journals carries a stamp `<run>/<product>/<seq>` (Kafka header
  `farmlink.sequence`); the service passes it on with its event, or on a marker when it refuses
  the line; the matching service journals a run's lines of a product in seq order
  (events/sequence.py), whatever order the three event topics deliver them in.
- Only a delivery or payment line waits: for the fills made by the lines before it to reach
  settlement; and a supervision round waits for everything before it (it sees what was recorded before it). An order cancellation whose order this file did not place (so its product is
  unknown here) is sent alone, after everything before it is done.
A line is done when its service sent a receipt (accepted or rejected) and, for inputs the matcher
journals, when the matcher's receipt came; lines are reported in file order.
"""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from contracts.inputs import (
    INPUT_KIND,
    INPUT_OWNER,
    KEY_ROTATION_TYPES,
    MATCHER_INPUT_TYPES,
    REGISTRATION_TYPES,
    SERVICE_INPUT_TOPIC,
    SIGNED_INPUT_TYPES,
    InputMessage,
    party_id_of,
    producer_of,
)
from contracts.parties import PAIRING_OFFICE, PRICE_FEED, SETTLEMENT_DESK
from contracts.signing import sign
from contracts.topics import SEQUENCE_HEADER
from events.access import COOPERATIVE, INPUT_PRODUCER
from events.relay import idempotent_producer
from farmlink.producers.keyring import Keyring, local_keyring
from farmlink.producers.receipt_watcher import LineProgress, ReceiptWatcher
from farmlink.producers.round_cutoff import with_cutoff
from events.settings import kafka_options, settings
from farmlink.producers.scenario import LineError, ScenarioLine

FILL_DEPENDENT_TYPES = frozenset({"delivery.confirmed", "payment.made"})
ROUND_TYPES = frozenset({"supervision.round"})
"""A supervision round sees what was recorded before it: it is sent alone, once every line before it is done and
its fills reached settlement, stamped with its cut-off (farmlink/producers/round_cutoff.py), which the pairing service waits
for (services/pairing/rounds.py)."""


def key_of(input_type: str, payload: dict) -> str:
    """The Kafka key of an input: the product where the matcher needs order, else the entity id."""
    for name in ("product", "order_id", "cooperative_id", "lot_id", "plan_id", "buyer_id"):
        if name in payload:
            return str(payload[name])
    return input_type


def input_key(line: ScenarioLine) -> str:
    """The Kafka key of a scenario line's input (`key_of`)."""
    return key_of(line.type, line.payload)


def input_message(
    input_type: str, payload: dict, correlation_id: str, keyring: Keyring, message_id: str | None = None
) -> InputMessage:
    """An input as its producer sends it: signed with the producer's current key from `keyring`; a
    registration that names no public key given the producer's own; a key rotation that names none
    given a new key, made now (the keyring's current key from then on), and signed with the old one."""
    producer = producer_of(input_type, payload)
    signer = None
    if input_type in REGISTRATION_TYPES and payload.get("public_key") is None:
        payload = {**payload, "public_key": keyring.public_key(producer)}
    if input_type in KEY_ROTATION_TYPES and payload.get("public_key") is None:
        # the envelope must hold before the keyring changes (a producer it refuses rotates nothing)
        InputMessage(message_id="check", type=input_type, producer=producer, correlation_id=correlation_id, payload=payload)
        signer, new_key = keyring.rotate(producer)
        payload = {**payload, "public_key": new_key}
    fields = dict(
        message_id=message_id or uuid.uuid4().hex,
        type=input_type,
        producer=producer,
        correlation_id=correlation_id,
        payload=payload,
    )
    signature = sign(signer or keyring.private_key(producer), fields) if input_type in SIGNED_INPUT_TYPES else None
    return InputMessage(**fields, signature=signature)


IMPLIED_PARTIES = (PRICE_FEED, SETTLEMENT_DESK, PAIRING_OFFICE)
"""Parties `farmlink publish` registers by itself, with the keyring's key, before the first line that
needs them when the file has not registered them first: a market's price feed, a settlement desk, a pairing office."""


def implied_registration(input_type: str, payload: dict, known: set[str]) -> tuple[str, dict] | None:
    """The registration (type, payload) to send before this line, or None; remembers what is known.
    A registration line makes its party known; a price or a settlement line of a party not yet known
    gets its party's registration first (the service accepts the same registration again: nothing changes)."""
    kind = INPUT_KIND.get(input_type)
    if kind is None or kind.party not in IMPLIED_PARTIES:
        return None
    party_id = party_id_of(input_type, payload)
    producer = kind.party.producer(party_id)
    if producer in known:
        return None
    known.add(producer)
    if input_type in REGISTRATION_TYPES:
        return None
    return f"{kind.party.input_prefix}.registered", {kind.party.id_field: party_id, "name": party_id}


def prepare_line(line: ScenarioLine, run_id: str, keyring: Keyring) -> InputMessage | str:
    """The input message `farmlink publish` sends for a valid line, signed and ready; or, when it
    cannot be built (a key that cannot be stored, a producer id the envelope refuses), the reason,
    so the line is reported as rejected by its number instead of stopping the run."""
    try:
        return input_message(line.type, line.payload, f"{run_id}:{line.line_no}", keyring)
    except (ValidationError, ValueError, OSError) as error:
        return f"line {line.line_no}: cannot be published: {_first_problem(error)}"


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error)


@dataclass
class PublishSummary:
    """How a publish went: accepted lines, and every rejected line with its reason."""

    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    stopped_early: bool = False


class _Publication:
    """One `publish_lines` run: its producers and receipts, the lines in flight, the settlement lines held back."""

    def __init__(
        self,
        bootstrap: str,
        lines: list[ScenarioLine | LineError],
        strict: bool,
        keyring: Keyring,
        on_line: Callable[[ScenarioLine | LineError, str | None], None],
    ) -> None:
        self.strict, self.keyring, self.on_line = strict, keyring, on_line
        self.summary = PublishSummary()
        self.run_id = f"publish-{uuid.uuid4().hex[:12]}"
        # Each input topic is written as its producer principal (events/access.py); every one of them may read receipts.
        principals = list(
            dict.fromkeys(
                INPUT_PRODUCER[SERVICE_INPUT_TOPIC[INPUT_OWNER[line.type]]] for line in lines if isinstance(line, ScenarioLine)
            )
        )
        self.bootstrap = bootstrap
        self.watcher = ReceiptWatcher(bootstrap, self.run_id, principals[0] if principals else COOPERATIVE)
        self.producers = {p: idempotent_producer(bootstrap, linger_ms=5, **kafka_options(settings(), p)) for p in principals}
        self.in_flight: list[LineProgress] = []
        self.sequence: dict[str, int] = {}  # product -> last seq stamped in this run
        self.order_products: dict[str, str] = {}  # order id -> product, for cancellations
        self.known_parties: set[str] = set()  # price feeds and settlement desks registered in this run (implied_registration)
        self.journaled: list[LineProgress] = []  # every line sent so far that the matcher journals, in file order
        self.settlement: asyncio.Queue = asyncio.Queue()
        self.sent: list[asyncio.Future] = []

    def settle_finished(self) -> None:
        """Report the lines at the head of the file that are done, in file order."""
        while self.in_flight and self.in_flight[0].done:
            progress = self.in_flight.pop(0)
            receipt = progress.service_receipt
            assert receipt is not None
            if receipt.status == "rejected":
                reason = f"line {progress.line.line_no}: {receipt.reason}"
                self.summary.rejected.append(reason)
                self.on_line(progress.line, reason)
            else:
                self.summary.accepted += 1
                self.on_line(progress.line, None)

    async def drain(self) -> None:
        """Wait until every line sent so far is done."""
        await self.settlement.join()
        first = f"line {self.in_flight[0].line.line_no}" if self.in_flight else "lines"
        await self.watcher.wait_for(lambda: all(p.done for p in self.in_flight), first)
        self.settle_finished()

    async def send(self, topic: str, message: InputMessage, headers: list[tuple[str, bytes]]) -> asyncio.Future:
        future = await self.producers[INPUT_PRODUCER[topic]].send(
            topic, message.model_dump_json().encode(), key=self.run_id.encode(), headers=headers
        )
        self.sent.append(future)
        return future

    async def send_settlement_lines(self) -> None:
        """Deliveries and payments in file order, each once the fills of the lines before it reached settlement;
        the other lines go on meanwhile (nothing they do can change those fills)."""
        watcher, journaled = self.watcher, self.journaled
        checked = 0
        while True:
            item = await self.settlement.get()
            try:
                if item is None:
                    return
                topic, message, line_no, before = item
                while checked < before:
                    await watcher.wait_for(lambda: journaled[checked].done, f"line {journaled[checked].line.line_no}")
                    checked += 1
                required = {f for p in journaled[:before] if p.journal_receipt for f in p.journal_receipt.fill_ids}
                await watcher.wait_for(
                    lambda: required <= watcher.fills_recorded, f"the fills before line {line_no} reaching settlement"
                )
                await self.send(topic, message, [])
            finally:
                self.settlement.task_done()

    async def report_progress(self) -> None:
        while True:
            await self.watcher.changed.wait()
            await asyncio.sleep(0.05)
            self.settle_finished()

    def refuse(self, line: ScenarioLine | LineError, reason: str) -> bool:
        """A line refused before it was sent: reported; False when that ends a strict run."""
        self.summary.rejected.append(reason)
        self.on_line(line, reason)
        if self.strict:
            self.summary.stopped_early = True
            return False
        return True

    def stamp(self, line: ScenarioLine) -> tuple[list[tuple[str, bytes]], bool]:
        """The line's sequence header (for the lines the matcher journals) and whether it must be sent alone."""
        headers: list[tuple[str, bytes]] = []
        alone = self.strict or line.type in ROUND_TYPES
        if line.type in MATCHER_INPUT_TYPES:
            product = line.payload.get("product") or self.order_products.get(str(line.payload.get("order_id")))
            if line.type == "order.placed" and product is not None:
                self.order_products[str(line.payload.get("order_id"))] = str(product)
            if isinstance(product, str):
                self.sequence[product] = self.sequence.get(product, 0) + 1
                headers.append((SEQUENCE_HEADER, f"{self.run_id}/{product}/{self.sequence[product]}".encode()))
            else:
                alone = True  # its product is not known here: nothing may overtake it, it overtakes nothing
        return headers, alone

    async def publish(self, line: ScenarioLine | LineError, sender: asyncio.Task) -> bool:
        """Send one line (or report it refused); False when the run stops here."""
        if isinstance(line, LineError):
            return self.refuse(line, str(line))
        if sender.done():
            sender.result()  # a failure (a timeout) of the settlement sender ends the run with its reason
        message = prepare_line(line, self.run_id, self.keyring)
        if isinstance(message, str):  # refused here, like a line that failed its model, before it takes a place in the sequence
            return self.refuse(line, message)
        topic = SERVICE_INPUT_TOPIC[INPUT_OWNER[line.type]]
        implied = implied_registration(line.type, line.payload, self.known_parties)
        if implied is not None:  # its receipt is not a line's: accepted, or "already registered" from an earlier run
            await self.send(topic, input_message(*implied, f"{self.run_id}:implied-{line.line_no}", self.keyring), [])
        headers, alone = self.stamp(line)
        if alone:
            await self.drain()
            if line.type in FILL_DEPENDENT_TYPES or line.type in ROUND_TYPES:
                await self.watcher.wait_for(
                    lambda: self.watcher.fills_made <= self.watcher.fills_recorded, "fills reaching settlement"
                )
            if line.type in ROUND_TYPES and line.payload.get("cutoff") is None:  # what the round must have seen
                line = await with_cutoff(self.bootstrap, line)
                message = input_message(line.type, line.payload, message.correlation_id, self.keyring, message.message_id)
        if self.strict and self.summary.rejected:
            self.summary.stopped_early = True
            return False
        progress = LineProgress(line, needs_journal=line.type in MATCHER_INPUT_TYPES)
        self.watcher.lines[message.correlation_id] = progress
        self.in_flight.append(progress)
        if progress.needs_journal:
            self.journaled.append(progress)
        if line.type in FILL_DEPENDENT_TYPES and not alone:
            self.settlement.put_nowait((topic, message, line.line_no, len(self.journaled)))
        else:
            future = await self.send(topic, message, headers)
            if alone:
                await future
                await self.drain()
        self.settle_finished()
        return True

    async def finish(self, sender: asyncio.Task) -> None:
        """Send the settlement lines still held back and wait until every line is done."""
        self.settlement.put_nowait(None)
        await sender
        for producer in self.producers.values():
            await producer.flush()
        for future in self.sent:
            await future  # a send Kafka refused raises here
        await self.drain()


async def publish_lines(
    bootstrap: str,
    lines: list[ScenarioLine | LineError],
    *,
    strict: bool = False,
    keyring: Keyring | None = None,
    on_line: Callable[[ScenarioLine | LineError, str | None], None] = lambda line, reason: None,
) -> PublishSummary:
    """Publish valid lines in file order, waiting as needed; report each line as it is settled.
    Cooperative and buyer lines are signed with their producer's key from `keyring` (default: this farmlink home's)."""
    run = _Publication(bootstrap, lines, strict, keyring or local_keyring(), on_line)
    await run.watcher.start()
    for producer in run.producers.values():
        await producer.start()
    sender = asyncio.create_task(run.send_settlement_lines())
    reporter = asyncio.create_task(run.report_progress())
    try:
        for line in lines:
            if not await run.publish(line, sender):
                break
        await run.finish(sender)
    finally:
        for task in (sender, reporter):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for producer in run.producers.values():
            await producer.stop()
        await run.watcher.stop()
    return run.summary
