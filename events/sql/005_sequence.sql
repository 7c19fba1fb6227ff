-- Sequenced inputs (events/sequence.py): how far each run's inputs of a product have been handled,
-- and the records that came before their turn, kept until the inputs before them came.
CREATE TABLE sequence_progress (
    run text NOT NULL,
    product text NOT NULL,
    next_seq integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (run, product)
);

CREATE TABLE sequence_pending (
    run text NOT NULL,
    product text NOT NULL,
    seq integer NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    key bytea,
    value bytea NOT NULL,
    headers jsonb NOT NULL,
    parked_at timestamptz NOT NULL,
    released boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run, product, seq)
);
CREATE INDEX sequence_pending_waiting ON sequence_pending (parked_at) WHERE NOT released;
