-- What the pairing office's page needs beyond the parties' own data (services/gateway/office.py):
-- where each household is, the plantings and plans of each township, and what each household was paid.

ALTER TABLE households ADD COLUMN county text NOT NULL DEFAULT '';
ALTER TABLE households ADD COLUMN township text NOT NULL DEFAULT '';

-- PlantingRecorded (farmlink.cooperative.events): land put under a product.
CREATE TABLE plantings (
    planting_id text PRIMARY KEY,
    cooperative_id text NOT NULL,
    county text NOT NULL,
    township text NOT NULL,
    product text NOT NULL,
    area_mu numeric NOT NULL
);

-- PlanRecorded (farmlink.settlement.events): a township's industry plan.
CREATE TABLE plans (
    plan_id text PRIMARY KEY,
    county text NOT NULL,
    township text NOT NULL,
    product text NOT NULL,
    area_mu numeric NOT NULL,
    target_household_income_fen bigint NOT NULL
);

-- PaymentMade (farmlink.settlement.events): fen paid to each household for each product, summed.
CREATE TABLE incomes (
    household_id text NOT NULL,
    product text NOT NULL,
    paid_fen bigint NOT NULL,
    PRIMARY KEY (household_id, product)
);
