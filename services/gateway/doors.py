"""What the gateway checks at the door before it publishes a posted input: the services' own checks.

The body must be exactly what a Kafka producer sends: one input message (contracts/inputs.py,
`InputMessage`) signed by its producer (contracts/signing.py). It is decoded with the services'
decoder (events/codec.py: size, UTF-8, JSON, nesting, text, the envelope, the payload's model)
and the producer is checked with the services' authentication (events/authentication.py), so a
body the owning service would dead-letter for its shape is refused here with 400 naming the
field. The signature is pre-checked when the gateway knows the producer's key (its projection
of registrations; a registration is checked against the key it carries): one that does not
verify is refused with 401 and the service's own reason. Otherwise the owning service verifies
it and the receipt says what became of it.
"""

from dataclasses import dataclass

from contracts.inputs import INPUT_OWNER, REGISTRATION_TYPES, SERVICE_INPUT_TOPIC, InputMessage, party_id_of, producer_kind
from contracts.model import Contract
from events.authentication import authenticate, authenticate_registration, producer_for
from events.codec import decode_input
from events.consumer import Delivery, Rejection, describe


GATEWAY_OWNERS = ("cooperative", "buyer")
"""The services whose input topics the gateway may write (events/access.py)."""


class Refused(Exception):
    """An input the gateway does not publish: the HTTP status and the reason (naming the field)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Posted:
    """A posted body that has the shape of an input a cooperative or a buyer signs, and the party it names."""

    message: InputMessage
    payload: Contract
    kind: str
    party_id: str

    @property
    def party(self) -> str:
        return producer_for(self.kind, self.party_id)

    @property
    def topic(self) -> str:
        """The owning service's input topic."""
        return SERVICE_INPUT_TOPIC[INPUT_OWNER[self.message.type]]

    @property
    def key(self) -> bytes:
        """Kafka key: the producer, so one party's inputs keep their order (a registration before the harvest that needs it)."""
        return self.message.producer.encode()


def read(body: bytes) -> Posted:
    """The posted bytes decoded as the owning service decodes them; Refused 400 naming the field, or 403 for an
    input of a price feed or a settlement desk (they publish on Kafka)."""
    try:
        decoded = decode_input(Delivery(topic="http", partition=0, offset=0, key=None, value=body, headers=()))
    except Exception as error:
        raise Refused(400, describe(error)) from None
    message, payload = decoded.item
    if INPUT_OWNER[message.type] not in GATEWAY_OWNERS:
        raise Refused(
            403,
            f"type: {message.type} is not a cooperative's or buyer's input; the gateway takes only "
            f"those (price feeds and settlement desks publish on Kafka)",
        )
    kind = producer_kind(message.type)
    assert kind is not None
    return Posted(message, payload, kind, party_id_of(message.type, payload.model_dump()))


def admit(posted: Posted, registered_key: str | None) -> Posted:
    """The input, once its producer and signature pass the services' own checks (a registration: against the key
    it carries; another input: against `registered_key` when the gateway knows it, else only that it is signed
    and names its party, and the owning service verifies). Refused 400 (producer, missing signature) or 401
    (a signature that does not verify), with the service's own reason."""
    message, kind, party_id = posted.message, posted.kind, posted.party_id
    try:
        if message.type in REGISTRATION_TYPES:
            authenticate_registration(message, kind, party_id, getattr(posted.payload, "public_key", None))
        elif registered_key is None:
            _shape_only(message, kind, party_id)
        else:
            authenticate(message, kind, party_id, registered_key)
    except Rejection as refusal:
        reason = str(refusal)
        forged = reason.startswith("signature:") and not reason.startswith("signature: missing")
        raise Refused(401 if forged else 400, reason) from None
    return posted


def _shape_only(message: InputMessage, kind: str, party_id: str) -> None:
    """The checks that need no key: the producer names the party, and a signature is there."""
    expected = producer_for(kind, party_id)
    if message.producer != expected:
        raise Rejection(f"producer: {message.producer} cannot submit for {kind} {party_id}; expected {expected}")
    if not message.signature:
        raise Rejection(f"signature: missing; {kind}s sign every input with their registered key (contracts/signing.py)")
