-- Operations: per-MID usage counters, messages, calls, the dispatch outbox, kill-switches.

CREATE TABLE mid_usage (
    mid_id             TEXT PRIMARY KEY REFERENCES mobile_identities(id),
    account_id         TEXT NOT NULL,
    tat_ms             BIGINT NOT NULL DEFAULT 0,
    hour_start         BIGINT NOT NULL DEFAULT 0,
    sms_hour           BIGINT NOT NULL DEFAULT 0,
    calls_hour         BIGINT NOT NULL DEFAULT 0,
    day_start          BIGINT NOT NULL DEFAULT 0,
    sms_day            BIGINT NOT NULL DEFAULT 0,
    calls_day          BIGINT NOT NULL DEFAULT 0,
    month_start        BIGINT NOT NULL DEFAULT 0,
    spend_month        BIGINT NOT NULL DEFAULT 0,
    call_seconds_month BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE destination_usage (
    mid_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    destination TEXT NOT NULL,
    hour_start  BIGINT NOT NULL,
    hour_count  BIGINT NOT NULL,
    day_start   BIGINT NOT NULL,
    day_count   BIGINT NOT NULL,
    PRIMARY KEY (mid_id, kind, destination)
);

CREATE TABLE messages (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    mid_id       TEXT NOT NULL REFERENCES mobile_identities(id),
    direction    TEXT NOT NULL,
    from_number  TEXT NOT NULL,
    to_number    TEXT NOT NULL,
    body         TEXT NOT NULL,
    segments     BIGINT NOT NULL,
    encoding     TEXT NOT NULL,
    cost         BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    handed_at    BIGINT,
    sent_at      BIGINT,
    delivered_at BIGINT,
    telco_ref    TEXT,
    retry_count  BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX messages_mid ON messages (mid_id, id);
CREATE INDEX messages_mid_direction ON messages (mid_id, direction, id);
CREATE INDEX messages_telco_ref ON messages (telco_ref);

CREATE TABLE outbox (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL,
    ref_id      TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (due_at);
CREATE INDEX outbox_ref ON outbox (ref_id);

CREATE TABLE kill_switches (
    id             TEXT COLLATE "C" PRIMARY KEY,
    scope          TEXT NOT NULL,
    target_id      TEXT,
    account_id     TEXT,
    reason         TEXT NOT NULL,
    engaged_by     TEXT NOT NULL,
    engaged_at     BIGINT NOT NULL,
    released_at    BIGINT,
    released_by    TEXT,
    release_reason TEXT
);
CREATE INDEX kill_switches_active ON kill_switches (released_at, scope, target_id);
