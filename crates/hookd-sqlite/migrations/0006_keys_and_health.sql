-- API keys: a prefix people tell their keys apart by (never enough to use one), and when each
-- was last used. Webhooks: when their receiver last answered well and last failed, for the
-- health a webhook's read shows.

ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, id);

ALTER TABLE webhooks ADD COLUMN last_success_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN last_failure_at INTEGER NOT NULL DEFAULT 0;
