-- The dashboard: attempts tallied per webhook and minute (written with the attempts, merged
-- per batch), and its sign-ins and portal links, stored by the SHA-256 of their token.
-- `l0`..`l13` count attempts by latency bucket (hookd_core::store::LATENCY_BOUNDS_MS).

CREATE TABLE attempt_minutes (
    webhook_id    TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    minute        BIGINT NOT NULL,
    delivered     BIGINT NOT NULL,
    retrying      BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    l0 BIGINT NOT NULL, l1 BIGINT NOT NULL, l2 BIGINT NOT NULL, l3 BIGINT NOT NULL,
    l4 BIGINT NOT NULL, l5 BIGINT NOT NULL, l6 BIGINT NOT NULL, l7 BIGINT NOT NULL,
    l8 BIGINT NOT NULL, l9 BIGINT NOT NULL, l10 BIGINT NOT NULL, l11 BIGINT NOT NULL,
    l12 BIGINT NOT NULL, l13 BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, minute)
);
CREATE INDEX attempt_minutes_by_workspace ON attempt_minutes (workspace_id, minute);

CREATE TABLE dashboard_passes (
    id            TEXT PRIMARY KEY,
    link          BOOLEAN NOT NULL,
    granted_by    TEXT NOT NULL,
    workspace_id  TEXT,
    access        TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX dashboard_passes_by_grant ON dashboard_passes (granted_by);
CREATE INDEX dashboard_passes_by_expiry ON dashboard_passes (expires_at);
