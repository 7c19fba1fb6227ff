-- Appends no longer hold a lock across their commit (group commit), so positions need not be in
-- commit order; readers walk (transaction_id, global_position) below the oldest open transaction.
CREATE INDEX events_commit_order ON events (transaction_id, global_position);
