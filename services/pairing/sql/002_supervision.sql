-- What the supervision ledger's rules read (services/pairing/facts.py), kept by the pairing service from the
-- services' event topics, each with where it came from: its schema and position there (what a round records it
-- saw) and its topic, partition and offset (what a round's cut-off names). Inserted once per event id.
CREATE TABLE facts (
    event_id text PRIMARY KEY,
    schema_name text NOT NULL,
    global_position bigint NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL
);

-- Per event topic partition, the offset after the last record kept: a round waits until it reaches its cut-off.
CREATE TABLE fact_progress (
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);

-- The problems supervision rounds opened (ProblemFound), open until a round finds them cured (ProblemCured) or
-- an inspector closes them (ProblemClosed).
CREATE TABLE problems (
    problem_id text PRIMARY KEY,
    kind text NOT NULL,
    state text NOT NULL,            -- open | closed
    opened_in text NOT NULL
);
