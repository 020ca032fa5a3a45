-- When a webhook started failing without a success since (0: it is not failing), for
-- disabling webhooks that fail continuously.

ALTER TABLE webhooks ADD COLUMN failing_since INTEGER NOT NULL DEFAULT 0;
