-- Snapshots of each product's book (services/matching/snapshots.py): derived data that lets a
-- restarted instance replay only the journal after the latest one. state: the canonical snapshot
-- bytes (matcher/snapshot.py), zlib-compressed; digest: sha256 (hex) of the uncompressed bytes.
-- The book stands after journal entry journal_seq and the events it caused, at stream_version of
-- stream market-<product>. The audit compares every row with its re-execution of the journal.
CREATE TABLE snapshots (
    product text NOT NULL,
    journal_seq integer NOT NULL,
    stream_version integer NOT NULL,
    state bytea NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (product, journal_seq)
);
