"""How parties join farmlink and change their keys: the registration inputs of cooperatives (with their households),
buyers, price feeds and settlement desks, and the key rotation and revocation every party kind shares (contracts/inputs.py
lists every input type; contracts/pairing_inputs.py has the pairing office's)."""

from pydantic import Field

from contracts.model import Contract
from contracts.signing import PublicKey
from contracts.types import Identifier, Name


class HouseholdMembership(Contract):
    """A member household and whether it is a registered-poor (建档立卡) household."""

    household_id: Identifier
    registered_poor: bool


class CooperativeRegistration(Contract):
    """A cooperative joins farmlink with its households and the public key it signs with.

    `public_key` is optional here so that `farmlink simulate` reads a scenario file without
    keys (`farmlink publish` fills in the cooperative's own); the cooperative service requires it.
    """

    cooperative_id: Identifier
    name: Name
    county: Name
    township: Name
    village: Name
    households: tuple[HouseholdMembership, ...] = Field(min_length=1)
    public_key: PublicKey | None = None


class BuyerRegistration(Contract):
    """A buyer (enterprise, canteen, supermarket, county purchase programme) joins farmlink with its public key.

    `public_key` is optional here for the same reason as a cooperative's; the buyer service requires it.
    """

    buyer_id: Identifier
    name: Name
    public_key: PublicKey | None = None


class PriceFeedRegistration(Contract):
    """A market's price feed joins farmlink with the public key it signs prices with (one feed per market).

    `public_key` is optional here for the same reason as a cooperative's; the market service requires it.
    """

    market: Name
    name: Name
    public_key: PublicKey | None = None


class SettlementDeskRegistration(Contract):
    """A settlement desk (the county's, a township's) joins farmlink with the public key it signs
    plans, deliveries and payments with. `public_key` is optional here as for the others."""

    desk_id: Identifier
    name: Name
    public_key: PublicKey | None = None


class KeyRotation(Contract):
    """A party replaces its current key with a new one; signed with the current key (contracts/parties.py).

    `public_key` is optional here: `farmlink publish` makes a new key in its keyring when the line names none."""

    party_id: Name
    public_key: PublicKey | None = None


class KeyRevocation(Contract):
    """A party revokes its current key; signed with it. From here on the party's inputs are refused."""

    party_id: Name
    reason: Name
