-- Who is where: households by village, township and county, with the registered-poor flag.
CREATE TABLE households (
    household_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    village text NOT NULL,
    township text NOT NULL,
    county text NOT NULL,
    registered_poor boolean NOT NULL
);

-- Each lot's contributions (household -> quantity), for splitting payments.
CREATE TABLE lots (
    lot_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    product text NOT NULL,
    contributions jsonb NOT NULL
);

CREATE TABLE plantings (
    planting_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    county text NOT NULL,
    township text NOT NULL,
    product text NOT NULL,
    area_mu numeric NOT NULL
);

-- Fills as the matcher made them, and how much of each was delivered and paid.
CREATE TABLE fills (
    fill_id text PRIMARY KEY,
    lot_id text NOT NULL,
    outlet_id text NOT NULL,
    outlet_kind text NOT NULL,
    buyer_id text NOT NULL,
    product text NOT NULL,
    cooperative_id text NOT NULL,
    quantity numeric NOT NULL,
    unit_price_fen bigint NOT NULL,
    price_basis text NOT NULL,
    revenue_fen bigint NOT NULL,
    household_income_fen jsonb NOT NULL,
    delivered numeric NOT NULL DEFAULT 0,
    paid_fen bigint NOT NULL DEFAULT 0,
    UNIQUE (lot_id, outlet_id)
);

-- The household income ledger: fen actually paid, per household and product.
CREATE TABLE incomes (
    household_id text NOT NULL,
    product text NOT NULL,
    paid_fen bigint NOT NULL,
    PRIMARY KEY (household_id, product)
);

CREATE TABLE plans (
    plan_id text PRIMARY KEY,
    county text NOT NULL,
    township text NOT NULL,
    product text NOT NULL,
    area_mu numeric NOT NULL,
    target_household_income_fen bigint NOT NULL
);
