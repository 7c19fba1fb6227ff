-- What buyers see on offer: each lot's remaining quantity, open or closed.
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
    open boolean NOT NULL,
    opened_by_journal_seq integer NOT NULL
);
CREATE INDEX offers_open ON offers (product) WHERE open;
