-- Registered buyers and the public key each signs its orders, cancellations and commitments with.
CREATE TABLE buyers (
    buyer_id text PRIMARY KEY,
    name text NOT NULL,
    public_key text NOT NULL
);
