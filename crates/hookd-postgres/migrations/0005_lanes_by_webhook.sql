-- Claims take each webhook's due deliveries in turn (so one webhook's pile of due deliveries
-- never makes the others wait), and the next wake-up is the earliest per webhook: both read
-- this index. The global indexes it replaces were only read by the claim and the wake-up, and
-- each costs every insert, claim and result one more index write.

CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at) WHERE state = 'pending';
DROP INDEX deliveries_due_first;
DROP INDEX deliveries_due_retry;
DROP INDEX deliveries_due;
