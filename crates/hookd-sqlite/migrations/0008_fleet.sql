-- The fleet behaviours. `ordering_key` names a delivery's lane within its webhook (a device:
-- a claim takes only its oldest pending delivery, and only when none is in flight);
-- `coalescing_key` lets records of later commits join it while it is open (batch windows,
-- debounce), with `planned_at` (its first due time), `device_time` (its record's device time, for
-- `coalesce: latest`) and the counts of records that joined and were superseded.

ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN coalescing_key TEXT;
ALTER TABLE deliveries ADD COLUMN planned_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN device_time INTEGER;
ALTER TABLE deliveries ADD COLUMN coalesced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN order_broken INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_in_order ON deliveries (webhook_id, ordering_key, id)
    WHERE state = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX deliveries_by_coalescing_key ON deliveries (webhook_id, coalescing_key, id)
    WHERE coalescing_key IS NOT NULL;
