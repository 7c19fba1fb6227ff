"""Who signs farmlink's inputs: four kinds of party, each holding one current Ed25519 key.

Every input is signed by the party it speaks for (contracts/signing.py) and carries the producer
``<party kind>:<party id>``:

| party kind | producer | registers with | its key is kept by |
| --- | --- | --- | --- |
| a cooperative | ``cooperative:<cooperative_id>`` | cooperative.registered | the cooperative service |
| a buyer | ``buyer:<buyer_id>`` | buyer.registered | the buyer service |
| a market's price feed | ``price-feed:<market>`` | price_feed.registered | the market service |
| a settlement desk | ``settlement-desk:<desk_id>`` | settlement_desk.registered | the settlement service |
| a pairing office | ``pairing-office:<office_id>`` | pairing_office.registered | the pairing service |

A registration carries the party's public key and is signed with it (self-signed). From then on:

- **rotation** (``<kind>.key_rotated``, naming the new public key) is signed with the party's
  current key; from its place in the log on, the new key is the current one and inputs signed
  with the old key are refused;
- **revocation** (``<kind>.key_revoked``, with a reason) is signed with the party's current key
  and revokes it: from its place in the log on, every input of that party is refused (a revoked
  party stays suspended; a key that may have leaked is first rotated, then the party goes on
  with the new key; revocation is for a party that must stop).

The audit applies the same rules from the log alone (farmlink/audit/signatures.py).
"""

from dataclasses import dataclass
from typing import ClassVar

from contracts.model import Contract
from contracts.signing import PublicKey, SignedInput
from contracts.types import Name


@dataclass(frozen=True)
class PartyKind:
    """One kind of party: its producer prefix, the prefix of its input types, the payload field that
    names it in its own inputs, and the service that keeps its keys."""

    name: str
    input_prefix: str
    id_field: str
    owner: str

    def producer(self, party_id: str) -> str:
        """The producer name this party's inputs carry, e.g. ``price-feed:Tongren market``."""
        return f"{self.name}:{party_id}"


COOPERATIVE = PartyKind("cooperative", "cooperative", "cooperative_id", "cooperative")
BUYER = PartyKind("buyer", "buyer", "buyer_id", "buyer")
PRICE_FEED = PartyKind("price-feed", "price_feed", "market", "market")
SETTLEMENT_DESK = PartyKind("settlement-desk", "settlement_desk", "desk_id", "settlement")
PAIRING_OFFICE = PartyKind("pairing-office", "pairing_office", "office_id", "pairing")

PARTY_KINDS: tuple[PartyKind, ...] = (COOPERATIVE, BUYER, PRICE_FEED, SETTLEMENT_DESK, PAIRING_OFFICE)
PARTY_KIND: dict[str, PartyKind] = {kind.name: kind for kind in PARTY_KINDS}

DEFAULT_DESK = "main"
"""The settlement desk a plan, delivery or payment line speaks for when it names no `desk_id`."""

DEFAULT_OFFICE = "main"
"""The pairing office a pairing, support or project line speaks for when it names no `office_id`."""

DEFAULT_PARTY_ID: dict[str, str] = {SETTLEMENT_DESK.name: DEFAULT_DESK, PAIRING_OFFICE.name: DEFAULT_OFFICE}
"""Party kinds whose lines may leave out who they speak for, and whom they then speak for."""


class KeyRotated(Contract):
    """A party's new key replaced its current one, by an input signed with the current one."""

    party_id: Name
    public_key: PublicKey
    previous_public_key: PublicKey
    signed_input: SignedInput | None = None


class KeyRevoked(Contract):
    """A party revoked its current key: from here on nothing it signs is accepted."""

    party_id: Name
    public_key: PublicKey
    reason: Name
    signed_input: SignedInput | None = None


class CooperativeKeyRotated(KeyRotated):
    """A cooperative rotated its key."""

    event_type: ClassVar[str] = "CooperativeKeyRotated"
    schema_version: ClassVar[int] = 1


class CooperativeKeyRevoked(KeyRevoked):
    """A cooperative revoked its key."""

    event_type: ClassVar[str] = "CooperativeKeyRevoked"
    schema_version: ClassVar[int] = 1


class BuyerKeyRotated(KeyRotated):
    """A buyer rotated its key."""

    event_type: ClassVar[str] = "BuyerKeyRotated"
    schema_version: ClassVar[int] = 1


class BuyerKeyRevoked(KeyRevoked):
    """A buyer revoked its key."""

    event_type: ClassVar[str] = "BuyerKeyRevoked"
    schema_version: ClassVar[int] = 1


class PriceFeedKeyRotated(KeyRotated):
    """A market's price feed rotated its key (party_id: the market)."""

    event_type: ClassVar[str] = "PriceFeedKeyRotated"
    schema_version: ClassVar[int] = 1


class PriceFeedKeyRevoked(KeyRevoked):
    """A market's price feed revoked its key (party_id: the market)."""

    event_type: ClassVar[str] = "PriceFeedKeyRevoked"
    schema_version: ClassVar[int] = 1


class SettlementDeskKeyRotated(KeyRotated):
    """A settlement desk rotated its key."""

    event_type: ClassVar[str] = "SettlementDeskKeyRotated"
    schema_version: ClassVar[int] = 1


class SettlementDeskKeyRevoked(KeyRevoked):
    """A settlement desk revoked its key."""

    event_type: ClassVar[str] = "SettlementDeskKeyRevoked"
    schema_version: ClassVar[int] = 1


class PairingOfficeKeyRotated(KeyRotated):
    """A pairing office rotated its key."""

    event_type: ClassVar[str] = "PairingOfficeKeyRotated"
    schema_version: ClassVar[int] = 1


class PairingOfficeKeyRevoked(KeyRevoked):
    """A pairing office revoked its key."""

    event_type: ClassVar[str] = "PairingOfficeKeyRevoked"
    schema_version: ClassVar[int] = 1


KEY_EVENTS: dict[str, tuple[type[KeyRotated], type[KeyRevoked]]] = {
    COOPERATIVE.name: (CooperativeKeyRotated, CooperativeKeyRevoked),
    BUYER.name: (BuyerKeyRotated, BuyerKeyRevoked),
    PRICE_FEED.name: (PriceFeedKeyRotated, PriceFeedKeyRevoked),
    SETTLEMENT_DESK.name: (SettlementDeskKeyRotated, SettlementDeskKeyRevoked),
    PAIRING_OFFICE.name: (PairingOfficeKeyRotated, PairingOfficeKeyRevoked),
}
"""Party kind -> the events its rotation and its revocation record."""
