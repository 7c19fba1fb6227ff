"""Who sent an input: the checks the cooperative and buyer services make before any rule.

A party (a cooperative or a buyer) signs every input with the Ed25519 key it registered
(contracts/signing.py); its inputs carry the producer ``<kind>:<id>``. A failed check is a
`Rejection` naming the field, so the input is dead-lettered with its reason.
"""

from contracts.inputs import InputMessage
from contracts.signing import SignedInput, verification_problem
from events.consumer import Rejection


def producer_for(kind: str, party_id: str) -> str:
    """The producer name a party's inputs carry, e.g. cooperative:fengjia."""
    return f"{kind}:{party_id}"


def authenticate(message: InputMessage, kind: str, party_id: str, registered_key: str | None, unknown: str = "") -> SignedInput:
    """An input the party it names sent and signed with its registered key; the evidence to record.
    `unknown` adds to the reason when the party has not registered."""
    expected = producer_for(kind, party_id)
    if message.producer != expected:
        raise Rejection(f"producer: {message.producer} cannot submit for {kind} {party_id}; expected {expected}")
    if registered_key is None:
        raise Rejection(f"payload.{kind}_id: unknown {kind} {party_id}{unknown}")
    return _verified(message, kind, registered_key, f"the key registered for {kind} {party_id}")


def authenticate_registration(message: InputMessage, kind: str, party_id: str, public_key: str | None) -> SignedInput:
    """A registration carries the party's public key and is signed with it (self-signed)."""
    expected = producer_for(kind, party_id)
    if message.producer != expected:
        raise Rejection(f"producer: {message.producer} cannot register {kind} {party_id}; expected {expected}")
    if public_key is None:
        raise Rejection(f"payload.public_key: a {kind} registers with the public key it signs its inputs with")
    return _verified(message, kind, public_key, "the public key in the registration")


def _verified(message: InputMessage, kind: str, key: str, whose: str) -> SignedInput:
    problem = verification_problem(key, message.model_dump())
    if problem == "missing":
        raise Rejection(f"signature: missing; {kind}s sign every input with {whose} (contracts/signing.py)")
    if problem is not None:
        raise Rejection(f"signature: {problem} with {whose}")
    return SignedInput.of(message.model_dump())
