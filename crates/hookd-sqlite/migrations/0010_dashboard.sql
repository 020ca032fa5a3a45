-- The dashboard: attempts tallied per webhook and minute (written with the attempts, merged
-- per batch), and its sign-ins and portal links, stored by the SHA-256 of their token.
-- `l0`..`l13` count attempts by latency bucket (hookd_core::store::LATENCY_BOUNDS_MS).

CREATE TABLE attempt_minutes (
    webhook_id    TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    minute        INTEGER NOT NULL,
    delivered     INTEGER NOT NULL,
    retrying      INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    l0 INTEGER NOT NULL, l1 INTEGER NOT NULL, l2 INTEGER NOT NULL, l3 INTEGER NOT NULL,
    l4 INTEGER NOT NULL, l5 INTEGER NOT NULL, l6 INTEGER NOT NULL, l7 INTEGER NOT NULL,
    l8 INTEGER NOT NULL, l9 INTEGER NOT NULL, l10 INTEGER NOT NULL, l11 INTEGER NOT NULL,
    l12 INTEGER NOT NULL, l13 INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, minute)
);
CREATE INDEX attempt_minutes_by_workspace ON attempt_minutes (workspace_id, minute);

CREATE TABLE dashboard_passes (
    id            TEXT PRIMARY KEY,
    link          INTEGER NOT NULL,
    granted_by    TEXT NOT NULL,
    workspace_id  TEXT,
    access        TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX dashboard_passes_by_grant ON dashboard_passes (granted_by);
CREATE INDEX dashboard_passes_by_expiry ON dashboard_passes (expires_at);
