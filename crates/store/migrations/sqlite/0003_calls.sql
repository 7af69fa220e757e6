-- Calls (PROTOCOL §3.5): outbound calls placed by agents and inbound calls forwarded to them.
-- One row per call; a retried call keeps its id and counts its attempts in retry_count.

CREATE TABLE calls (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    mid_id           TEXT NOT NULL REFERENCES mobile_identities(id),
    direction        TEXT NOT NULL,
    from_number      TEXT NOT NULL,
    to_number        TEXT NOT NULL,
    callback_sip_uri TEXT,
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    -- When the current attempt was handed to the carrier; NULL while waiting for it.
    handed_at        INTEGER,
    -- Ringing.
    started_at       INTEGER,
    answered_at      INTEGER,
    ended_at         INTEGER,
    duration_sec     INTEGER,
    hangup_cause     TEXT,
    telco_ref        TEXT,
    retry_count      INTEGER NOT NULL DEFAULT 0,
    -- Micro-euros charged on completion.
    cost             INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX calls_mid ON calls (mid_id, id);
CREATE INDEX calls_mid_direction ON calls (mid_id, direction, id);
CREATE INDEX calls_telco_ref ON calls (telco_ref);
-- Calls not yet ended, for the kill-switch: stays as small as the traffic in flight.
CREATE INDEX calls_live ON calls (account_id, mid_id) WHERE status IN ('initiated', 'ringing', 'in_progress');
