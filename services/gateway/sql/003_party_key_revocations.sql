-- A party's key follows its rotations (public_key is the current one); `revoked` holds the reason once
-- the party revoked it: from then on its requests and inputs are refused (contracts/parties.py).
ALTER TABLE parties ADD COLUMN revoked text;
