"""Who sent an input: the checks every service makes before any rule, and the keys it keeps.

Every party (a cooperative, a buyer, a market's price feed, a settlement desk: contracts/parties.py)
signs every input with its current Ed25519 key (contracts/signing.py); its inputs carry the producer
``<party kind>:<id>``. Each service keeps the current key of the parties it hears from in its own
`party_keys` table (events/sql/006_party_keys.sql): set by the party's registration, replaced by a
rotation, marked by a revocation. A failed check is a `Rejection` naming the field, so the input is
dead-lettered with its reason.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.inputs import INPUT_KIND, InputMessage, KeyRevocation, KeyRotation
from contracts.parties import KEY_EVENTS, PartyKind
from contracts.signing import SignedInput, verification_problem
from events.consumer import Decoded, Rejection, ids_of
from events.store import NewEvent
from events.unit import BatchUnitOfWork, Table

PARTY_KEYS = Table("party_keys", ("party",), (("party", "text"), ("public_key", "text"), ("revoked", "text")))


@dataclass(frozen=True)
class PartyKey:
    """A party's current key, and why it was revoked (None: it is good)."""

    public_key: str
    revoked: str | None = None


def producer_for(kind: str, party_id: str) -> str:
    """The producer name a party's inputs carry, e.g. cooperative:fengjia."""
    return f"{kind}:{party_id}"


async def load_keys(conn: asyncpg.Connection, uow: BatchUnitOfWork, producers: Iterable[str]) -> None:
    """The current keys of these parties, in one query (into the unit of work's view)."""
    wanted = list(dict.fromkeys(producers))
    if not wanted:
        return
    rows = await conn.fetch(
        f'SELECT party, public_key, revoked FROM "{uow.schema}".party_keys WHERE party = ANY($1::text[])', wanted
    )
    uow.absent(PARTY_KEYS.name, wanted)
    uow.load(PARTY_KEYS.name, {row["party"]: PartyKey(row["public_key"], row["revoked"]) for row in rows})


def producers_of(items: Sequence[Decoded[Any]]) -> list[str]:
    """The producers whose keys a batch of inputs needs."""
    return [item.item[0].producer for item in items]


def key_of(uow: BatchUnitOfWork, producer: str) -> PartyKey | None:
    """The party's current key as this batch sees it (None: not registered)."""
    found = uow.get(PARTY_KEYS.name, producer)
    return found if isinstance(found, PartyKey) else None


def keep_key(uow: BatchUnitOfWork, producer: str, key: PartyKey) -> None:
    """Stage the party's current key (written with the batch; later inputs of the batch see it)."""
    uow.put(PARTY_KEYS, {"party": producer, "public_key": key.public_key, "revoked": key.revoked}, view=False)
    uow.set(PARTY_KEYS.name, producer, key)


def authenticate(
    message: InputMessage, kind: str, party_id: str, registered: PartyKey | str | None, unknown: str = ""
) -> SignedInput:
    """An input the party it names sent and signed with its current key; the evidence to record.
    `unknown` adds to the reason when the party has not registered."""
    expected = producer_for(kind, party_id)
    if message.producer != expected:
        raise Rejection(f"producer: {message.producer} cannot submit for {kind} {party_id}; expected {expected}")
    if registered is None:
        field = INPUT_KIND[message.type].field if message.type in INPUT_KIND else f"{kind}_id"
        raise Rejection(f"payload.{field}: unknown {kind} {party_id}{unknown}")
    key = registered if isinstance(registered, PartyKey) else PartyKey(registered)
    if key.revoked is not None:
        raise Rejection(f"signature: the key of {expected} was revoked ({key.revoked}); its inputs are refused from there on")
    return _verified(message, kind, key.public_key, f"the key registered for {kind} {party_id}")


def authenticate_party(
    uow: BatchUnitOfWork, message: InputMessage, kind: PartyKind, party_id: str, unknown: str = ""
) -> SignedInput:
    """`authenticate` with the party's current key as this batch sees it."""
    return authenticate(message, kind.name, party_id, key_of(uow, kind.producer(party_id)), unknown)


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


def key_stream(kind: PartyKind, party_id: str) -> str:
    """The stream a party's key rotations and revocation are recorded on."""
    return f"{kind.name}-keys-{party_id}"


def key_streams(items: Sequence[Decoded[Any]]) -> list[str]:
    """The key streams a batch of inputs may append to (its rotations and revocations)."""
    out = []
    for item in items:
        message, request = item.item
        if isinstance(request, KeyRotation | KeyRevocation) and message.type in INPUT_KIND:
            out.append(key_stream(INPUT_KIND[message.type].party, request.party_id))
    return out


def _own_party(message: InputMessage, kind: PartyKind) -> None:
    if message.type not in INPUT_KIND or INPUT_KIND[message.type].party is not kind:
        raise Rejection(f"type: {message.type} does not change the key of a {kind.name}")


def rotate_key(
    uow: BatchUnitOfWork, decoded: Decoded[Any], message: InputMessage, rotation: KeyRotation, kind: PartyKind
) -> None:
    """A party's new key, by an input signed with its current one: from here on the new key is current."""
    _own_party(message, kind)
    producer = kind.producer(rotation.party_id)
    current = key_of(uow, producer)
    evidence = authenticate(message, kind.name, rotation.party_id, current)
    assert current is not None
    if rotation.public_key is None:
        raise Rejection("payload.public_key: a rotation names the new public key")
    if rotation.public_key == current.public_key:
        raise Rejection(f"payload.public_key: that is already the current key of {producer}")
    rotated = KEY_EVENTS[kind.name][0](
        party_id=rotation.party_id, public_key=rotation.public_key, previous_public_key=current.public_key, signed_input=evidence
    )
    stream = key_stream(kind, rotation.party_id)
    uow.append(stream, [NewEvent(rotated)], uow.stream_version(stream), **ids_of(decoded))
    keep_key(uow, producer, PartyKey(rotation.public_key))


def revoke_key(
    uow: BatchUnitOfWork, decoded: Decoded[Any], message: InputMessage, revocation: KeyRevocation, kind: PartyKind
) -> None:
    """A party revokes its current key, by an input signed with it: from here on its inputs are refused."""
    _own_party(message, kind)
    producer = kind.producer(revocation.party_id)
    current = key_of(uow, producer)
    evidence = authenticate(message, kind.name, revocation.party_id, current)
    assert current is not None
    revoked = KEY_EVENTS[kind.name][1](
        party_id=revocation.party_id, public_key=current.public_key, reason=revocation.reason, signed_input=evidence
    )
    stream = key_stream(kind, revocation.party_id)
    envelopes = uow.append(stream, [NewEvent(revoked)], uow.stream_version(stream), **ids_of(decoded))
    keep_key(uow, producer, PartyKey(current.public_key, f"{revocation.reason!r}, {stream} v{envelopes[0].stream_version}"))


def key_handlers(kind: PartyKind) -> dict[type, Callable[..., None]]:
    """The handlers a service adds for its parties' rotations and revocations."""
    return {
        KeyRotation: lambda uow, decoded, message, request: rotate_key(uow, decoded, message, request, kind),
        KeyRevocation: lambda uow, decoded, message, request: revoke_key(uow, decoded, message, request, kind),
    }


def register_party(
    uow: BatchUnitOfWork,
    decoded: Decoded[Any],
    message: InputMessage,
    kind: PartyKind,
    party_id: str,
    public_key: str | None,
    registered: Callable[[str], Any],
    stream: str,
) -> None:
    """A price feed's or a settlement desk's registration: self-signed; recorded once. The same registration
    again (the same key) is accepted and records nothing (a feed that starts over registers again);
    another key for a registered party is refused: that is a rotation. `registered` makes the event from the key."""
    evidence = authenticate_registration(message, kind.name, party_id, public_key)
    assert public_key is not None
    producer = kind.producer(party_id)
    current = key_of(uow, producer)
    if current is not None:
        if current.public_key == public_key and current.revoked is None:
            return
        raise Rejection(
            f"payload.{kind.id_field}: {kind.name} {party_id} is already registered"
            + ("" if current.revoked else f" with another key; a new key comes by {kind.input_prefix}.key_rotated")
        )
    uow.append(stream, [NewEvent(registered(public_key).model_copy(update={"signed_input": evidence}))], 0, **ids_of(decoded))
    keep_key(uow, producer, PartyKey(public_key))
