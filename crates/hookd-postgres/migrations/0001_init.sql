-- hookd on PostgreSQL. Times are Unix milliseconds; record bodies are stored as the exact
-- text delivered (JSONB would reorder their keys).

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    spec              TEXT NOT NULL,
    enabled           BOOLEAN NOT NULL,
    secret            TEXT NOT NULL,
    previous_secrets  TEXT NOT NULL DEFAULT '[]',
    disabled_reason   TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace_id, enabled);

CREATE TABLE records (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- While an attempt is in flight, `lease_token` names it and `next_attempt_at` =
-- `locked_until` = the lease's expiry, so an abandoned lease makes the delivery due again.
CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    state             TEXT NOT NULL,
    record_ids        TEXT[] NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    locked_until      BIGINT NOT NULL DEFAULT 0,
    lease_token       TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_status       INTEGER,
    last_explanation  TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_workspace ON deliveries (workspace_id, id);
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);

CREATE TABLE attempts (
    id                TEXT PRIMARY KEY,
    delivery_id       TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    status            INTEGER,
    response_headers  TEXT NOT NULL,
    response_body     TEXT,
    error_kind        TEXT,
    explanation       TEXT NOT NULL,
    outcome           TEXT NOT NULL
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);

CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    record_ids    TEXT[] NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);
