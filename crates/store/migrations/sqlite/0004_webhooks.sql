-- Outbound webhooks (PROTOCOL §8): the endpoints, the durable deliveries of their events,
-- and every attempt of each delivery.

CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    -- NULL for an account-scoped webhook, which hears every MID of the account.
    mid_id               TEXT REFERENCES mobile_identities(id),
    -- The normalised URL the guard accepted; judged again before every attempt.
    url                  TEXT NOT NULL,
    -- JSON array of event names, or ["*"].
    events               TEXT NOT NULL,
    -- Plaintext, because it signs every delivery (PROTOCOL §8, §10); gone with the webhook.
    secret               TEXT NOT NULL,
    secret_prefix        TEXT NOT NULL,
    -- active | disabled
    status               TEXT NOT NULL,
    -- gone (the receiver answered 410) | consecutive_failures
    disabled_reason      TEXT,
    disabled_at          INTEGER,
    -- Deliveries failed in a row; any delivered one resets it.
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
-- Lists and counts per scope; the fan-out of an account's events.
CREATE INDEX webhooks_scope ON webhooks (account_id, mid_id, id);
-- The accounts a global kill-switch must tell.
CREATE INDEX webhooks_status ON webhooks (status, account_id);

-- The last `sequence` handed out per resource (a MID, or an account for pings).
CREATE TABLE webhook_sequences (
    resource_id   TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
);

-- One event for one webhook: written in the transaction of the change that caused it.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    -- The message id (`webhook-id`), the same for every webhook and every retry.
    event_id         TEXT NOT NULL,
    event            TEXT NOT NULL,
    mid_id           TEXT,
    sequence         INTEGER NOT NULL,
    -- The exact bytes every attempt sends and signs.
    payload          TEXT NOT NULL,
    -- pending | delivered | failed
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- When the next attempt is due; NULL once finished, or parked while the webhook is disabled.
    due_at           INTEGER,
    -- A worker's claim: nobody else attempts the delivery before lease_until.
    lease_until      INTEGER,
    lease_token      TEXT,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_error       TEXT,
    -- The delivery this one sends again (a customer's redelivery).
    redelivery_of    TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_webhook_status ON webhook_deliveries (webhook_id, status, id);

-- Every attempt: what happened, never more than an escaped 1 KiB of what the receiver said.
CREATE TABLE webhook_attempts (
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    account_id       TEXT NOT NULL,
    attempted_at     INTEGER NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    -- refused | connect | timeout | redirect | request | NULL when answered
    error_kind       TEXT,
    error            TEXT,
    response_excerpt TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
