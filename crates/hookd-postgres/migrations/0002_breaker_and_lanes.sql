-- The circuit breaker: failures in a row across a webhook's deliveries, and until when the
-- webhook is paused. First attempts and retries are claimed from separate lanes.

ALTER TABLE webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN breaker_until BIGINT NOT NULL DEFAULT 0;

CREATE INDEX deliveries_due_first ON deliveries (next_attempt_at) WHERE state = 'pending' AND failures = 0;
CREATE INDEX deliveries_due_retry ON deliveries (next_attempt_at) WHERE state = 'pending' AND failures > 0;
