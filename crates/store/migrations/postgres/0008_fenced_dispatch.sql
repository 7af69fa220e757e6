-- Fenced dispatch and durable carrier events.
--
-- A claim of an outbox job names its holder (the replica's name) and raises the job's fence;
-- only the holder of the current fence may record the job's outcome. started_fence is the
-- fence of an attempt that reached the carrier and whose outcome is not recorded yet (for
-- carriers that cannot be asked afterwards whether they got it).
ALTER TABLE outbox ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN lease_holder TEXT;
ALTER TABLE outbox ADD COLUMN started_fence BIGINT;

-- A webhook delivery's claim names its holder too, so a restarted replica takes back its
-- own at once.
ALTER TABLE webhook_deliveries ADD COLUMN lease_holder TEXT;

-- Carrier events that could not be applied even alone: kept with their error for the
-- operator, never dropped (the network was told they arrived).
CREATE TABLE carrier_events_parked (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    error       TEXT NOT NULL,
    parked_at   BIGINT NOT NULL,
    retried_at  BIGINT,
    resolved_at BIGINT
);
CREATE INDEX carrier_events_parked_open ON carrier_events_parked (resolved_at, id);
