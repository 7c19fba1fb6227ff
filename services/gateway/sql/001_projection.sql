-- The gateway's own projection of the public topics (services/gateway/projection.py): what it serves.
-- Written only through the batch unit of work (events/unit.py), so each record counts once.

-- Registered cooperatives and buyers with the Ed25519 key each signs with (requests and inputs).
CREATE TABLE parties (
    party text PRIMARY KEY,             -- cooperative:<id> | buyer:<id>
    kind text NOT NULL,
    party_id text NOT NULL,
    name text NOT NULL,
    public_key text NOT NULL
);

CREATE TABLE households (
    household_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    village text NOT NULL,
    registered_poor boolean NOT NULL
);

CREATE TABLE lots (
    lot_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    product text NOT NULL,
    grade text NOT NULL,
    quantity numeric NOT NULL,
    available_from date NOT NULL,
    expires_on date NOT NULL,
    contributions jsonb NOT NULL
);
CREATE INDEX lots_by_cooperative ON lots (cooperative_id);

CREATE TABLE offers (
    lot_id text PRIMARY KEY,
    product text NOT NULL,
    grade text NOT NULL,
    cooperative_id text NOT NULL,
    county text NOT NULL,
    township text NOT NULL,
    quantity_left numeric NOT NULL,
    available_from date NOT NULL,
    expires_on date NOT NULL,
    open boolean NOT NULL
);

-- seq: the order the gateway committed fills in; the SSE stream's event id (Last-Event-ID resumes).
CREATE TABLE fills (
    seq bigserial UNIQUE,
    fill_id text PRIMARY KEY,
    buyer_id text NOT NULL,
    cooperative_id text NOT NULL,
    lot_id text NOT NULL,
    product text NOT NULL,
    grade text NOT NULL,
    outlet_kind text NOT NULL,
    outlet_id text NOT NULL,
    quantity numeric NOT NULL,
    unit_price_fen bigint NOT NULL,
    price_basis text NOT NULL,
    revenue_fen bigint NOT NULL,
    household_income_fen jsonb NOT NULL,
    floor_price_fen bigint,
    market_price_fen bigint,
    price_as_of date,
    position bigint NOT NULL,
    committed_at timestamptz NOT NULL
);
CREATE INDEX fills_by_buyer ON fills (buyer_id, seq);
CREATE INDEX fills_by_lot ON fills (lot_id);

CREATE TABLE commitments (
    commitment_id text PRIMARY KEY,
    buyer_id text NOT NULL,
    product text NOT NULL,
    terms jsonb NOT NULL
);
CREATE INDEX commitments_by_buyer ON commitments (buyer_id);

-- Every receipt on farmlink.receipts (an input may get several: its service's, the matcher's).
CREATE TABLE receipts (
    message_id text NOT NULL,
    service text NOT NULL,
    status text NOT NULL,
    receipt jsonb NOT NULL,
    PRIMARY KEY (message_id, service, status)
);

-- Inputs posted through the gateway: who may read their receipts. Written at POST, after Kafka took it.
CREATE TABLE posted (
    message_id text PRIMARY KEY,
    producer text NOT NULL,
    type text NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now()
);

-- Counters for /metrics, kept with the projection so they survive restarts.
CREATE TABLE dead_letters (
    consumer text PRIMARY KEY,
    count bigint NOT NULL
);
