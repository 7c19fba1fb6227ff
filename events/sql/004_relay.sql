-- The relay finds outbox rows by the transaction that wrote them: rows still waiting behind an
-- older open transaction, and rows below its read position whose transaction has become
-- eligible since its last read (events/relay.py). Both look at a narrow range of transaction ids.
CREATE INDEX outbox_transaction ON outbox (transaction_id);
