-- Sources: inbound doors, their request log, and the message ids remembered against replays.

CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX sources_by_workspace ON sources (workspace_id, id);

CREATE TABLE source_requests (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    query TEXT NOT NULL,
    body BLOB NOT NULL,
    body_truncated INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    explanation TEXT NOT NULL,
    record_ids TEXT NOT NULL
);
CREATE INDEX source_requests_by_source ON source_requests (source_id, id);
CREATE INDEX source_requests_by_time ON source_requests (received_at);

CREATE TABLE source_messages (
    source_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (source_id, message_id)
);
CREATE INDEX source_messages_by_until ON source_messages (until);
