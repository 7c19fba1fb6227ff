-- The current key of every party whose inputs this service authenticates (events/authentication.py,
-- contracts/parties.py): set by the party's registration, replaced by a rotation; `revoked` says why
-- and where the key was revoked (NULL: good), and from then on the party's inputs are refused.
CREATE TABLE party_keys (
    party text PRIMARY KEY,
    public_key text NOT NULL,
    revoked text
);
