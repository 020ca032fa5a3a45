-- Retention: how many deliveries still reference a record (it is deleted at zero, once old
-- enough), and indexes for finding what is old enough to prune.

ALTER TABLE records ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
CREATE INDEX records_unreferenced ON records (created_at) WHERE refs <= 0;
CREATE INDEX deliveries_finished ON deliveries (state, updated_at) WHERE state <> 'pending';
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
