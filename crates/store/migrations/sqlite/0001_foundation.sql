-- Foundation schema, SQLite dialect. Times are integer milliseconds (UTC), money integer micro-units.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    billing_email  TEXT,
    status         TEXT NOT NULL,
    key_hash       TEXT NOT NULL UNIQUE,
    key_prefix     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    key_rotated_at INTEGER,
    suspended_at   INTEGER,
    suspend_reason TEXT
);

CREATE TABLE sim_requests (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts(id),
    status                 TEXT NOT NULL,
    country                TEXT NOT NULL,
    sim_type               TEXT NOT NULL,
    capabilities           TEXT NOT NULL,
    agent                  TEXT NOT NULL,
    commercial_constraints TEXT NOT NULL,
    reason                 TEXT,
    offer_id               TEXT,
    customer_id            TEXT,
    contract_id            TEXT,
    mid_id                 TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX sim_requests_account ON sim_requests (account_id, id);

CREATE TABLE offers (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id TEXT NOT NULL REFERENCES sim_requests(id),
    status         TEXT NOT NULL,
    country        TEXT NOT NULL,
    sim_type       TEXT NOT NULL,
    capabilities   TEXT NOT NULL,
    monthly_price  INTEGER NOT NULL,
    setup_fee      INTEGER NOT NULL,
    currency       TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    accepted_at    INTEGER
);
CREATE INDEX offers_account ON offers (account_id, id);

CREATE TABLE customers (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id       TEXT,
    legal_name           TEXT NOT NULL,
    tax_id               TEXT NOT NULL,
    billing_email        TEXT NOT NULL,
    address              TEXT NOT NULL,
    representative_name  TEXT NOT NULL,
    representative_phone TEXT,
    created_at           INTEGER NOT NULL
);
CREATE INDEX customers_account ON customers (account_id, id);

CREATE TABLE contracts (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id     TEXT NOT NULL REFERENCES sim_requests(id),
    offer_id           TEXT NOT NULL REFERENCES offers(id),
    customer_id        TEXT NOT NULL REFERENCES customers(id),
    status             TEXT NOT NULL,
    signing_token_hash TEXT NOT NULL UNIQUE,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    signed_at          INTEGER,
    signature_method   TEXT
);
CREATE INDEX contracts_account ON contracts (account_id, id);

CREATE TABLE numbers (
    id                TEXT PRIMARY KEY,
    phone_number      TEXT NOT NULL UNIQUE,
    country           TEXT NOT NULL,
    status            TEXT NOT NULL,
    mid_id            TEXT,
    quarantined_until INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX numbers_allocation ON numbers (country, status, id);

CREATE TABLE mobile_identities (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id  TEXT,
    contract_id     TEXT,
    number_id       TEXT NOT NULL REFERENCES numbers(id),
    phone_number    TEXT NOT NULL,
    country         TEXT NOT NULL,
    capabilities    TEXT NOT NULL,
    status          TEXT NOT NULL,
    inbound_sip_uri TEXT,
    limits          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    released_at     INTEGER
);
CREATE INDEX mobile_identities_account ON mobile_identities (account_id, id);
CREATE UNIQUE INDEX mobile_identities_live_number ON mobile_identities (phone_number) WHERE status <> 'released';

CREATE TABLE agent_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    mid_id       TEXT NOT NULL REFERENCES mobile_identities(id),
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX agent_tokens_mid ON agent_tokens (mid_id, revoked_at);

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    chain_id    TEXT NOT NULL,
    chain_seq   INTEGER NOT NULL,
    account_id  TEXT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    mid         TEXT,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (chain_id, chain_seq)
);
CREATE INDEX audit_events_account ON audit_events (account_id, seq);

CREATE TABLE audit_heads (
    chain_id TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL,
    hash     TEXT NOT NULL
);

-- Append-only: no update, no delete, and no INSERT OR REPLACE (whose implicit delete
-- fires no delete trigger unless recursive_triggers is on, so refuse the insert itself).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_events
             WHERE seq = NEW.seq OR id = NEW.id
                OR (chain_id = NEW.chain_id AND chain_seq = NEW.chain_seq))
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   INTEGER,
    response_body TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
