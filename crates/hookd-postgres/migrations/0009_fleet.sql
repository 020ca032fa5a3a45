-- The fleet behaviours. `ordering_key` names a delivery's lane within its webhook (a device:
-- a claim takes only its oldest pending delivery, and only when none is in flight);
-- `coalescing_key` lets records of later commits join it while it is open (batch windows,
-- debounce), with `planned_at` (its first due time), `device_time` (its record's device time, for
-- `coalesce: latest`) and the counts of records that joined and were superseded.

ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN coalescing_key TEXT;
ALTER TABLE deliveries ADD COLUMN planned_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN device_time BIGINT;
ALTER TABLE deliveries ADD COLUMN coalesced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN order_broken BOOLEAN NOT NULL DEFAULT FALSE;
-- A lane's order is the order its deliveries were written in (`order_seq`), not their ids:
-- ids made by two processes in the same millisecond do not sort by when they were made.
CREATE SEQUENCE deliveries_order_seq;
ALTER TABLE deliveries ADD COLUMN order_seq BIGINT;
CREATE INDEX deliveries_in_order ON deliveries (webhook_id, ordering_key, order_seq)
    WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX deliveries_by_coalescing_key ON deliveries (webhook_id, coalescing_key, id)
    WHERE coalescing_key IS NOT NULL;
