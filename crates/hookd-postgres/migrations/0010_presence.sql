-- Presence: the devices each workspace hears from. `heard` is what a device sent last
-- (`record`, or its own `connection` / `disconnection` event); `since` is when it entered
-- `state`. `offline_after` (ms) on a workspace turns on presence events: a sweep, one process
-- at a time (`presence_sweep`, a lease), moves devices between online and offline.

ALTER TABLE workspaces ADD COLUMN offline_after BIGINT;
CREATE TABLE devices (
    workspace_id  TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    fleet_id      TEXT,
    state         TEXT NOT NULL,
    since         BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    heard         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, device_id)
);
CREATE TABLE presence_sweep (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    holder  TEXT,
    until   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO presence_sweep (id) VALUES (1);
