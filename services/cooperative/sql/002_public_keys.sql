-- The public key each cooperative signs its inputs with (contracts/signing.py); NULL for
-- cooperatives registered before signing: their inputs are rejected (there is no way to add a key
-- to an existing registration yet).
ALTER TABLE cooperatives ADD COLUMN public_key text;
