-- The public key each cooperative signs its inputs with (contracts/signing.py); NULL for
-- cooperatives registered before signing: their inputs are rejected until they register a key.
ALTER TABLE cooperatives ADD COLUMN public_key text;
