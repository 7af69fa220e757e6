-- Foundation schema, PostgreSQL dialect. Times are integer milliseconds (UTC), money integer micro-units.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT COLLATE "C" PRIMARY KEY,
    name           TEXT NOT NULL,
    billing_email  TEXT,
    status         TEXT NOT NULL,
    key_hash       TEXT NOT NULL UNIQUE,
    key_prefix     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    key_rotated_at BIGINT,
    suspended_at   BIGINT,
    suspend_reason TEXT
);

CREATE TABLE sim_requests (
    id                     TEXT COLLATE "C" PRIMARY KEY,
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
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX sim_requests_account ON sim_requests (account_id, id);

CREATE TABLE offers (
    id             TEXT COLLATE "C" PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id TEXT NOT NULL REFERENCES sim_requests(id),
    status         TEXT NOT NULL,
    country        TEXT NOT NULL,
    sim_type       TEXT NOT NULL,
    capabilities   TEXT NOT NULL,
    monthly_price  BIGINT NOT NULL,
    setup_fee      BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    accepted_at    BIGINT
);
CREATE INDEX offers_account ON offers (account_id, id);

CREATE TABLE customers (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id       TEXT,
    legal_name           TEXT NOT NULL,
    tax_id               TEXT NOT NULL,
    billing_email        TEXT NOT NULL,
    address              TEXT NOT NULL,
    representative_name  TEXT NOT NULL,
    representative_phone TEXT,
    created_at           BIGINT NOT NULL
);
CREATE INDEX customers_account ON customers (account_id, id);

CREATE TABLE contracts (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id     TEXT NOT NULL REFERENCES sim_requests(id),
    offer_id           TEXT NOT NULL REFERENCES offers(id),
    customer_id        TEXT NOT NULL REFERENCES customers(id),
    status             TEXT NOT NULL,
    signing_token_hash TEXT NOT NULL UNIQUE,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    signed_at          BIGINT,
    signature_method   TEXT
);
CREATE INDEX contracts_account ON contracts (account_id, id);

CREATE TABLE numbers (
    id                TEXT COLLATE "C" PRIMARY KEY,
    phone_number      TEXT NOT NULL UNIQUE,
    country           TEXT NOT NULL,
    status            TEXT NOT NULL,
    mid_id            TEXT,
    quarantined_until BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX numbers_allocation ON numbers (country, status, id);

CREATE TABLE mobile_identities (
    id              TEXT COLLATE "C" PRIMARY KEY,
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
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    released_at     BIGINT
);
CREATE INDEX mobile_identities_account ON mobile_identities (account_id, id);
CREATE UNIQUE INDEX mobile_identities_live_number ON mobile_identities (phone_number) WHERE status <> 'released';

CREATE TABLE agent_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    mid_id       TEXT NOT NULL REFERENCES mobile_identities(id),
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX agent_tokens_mid ON agent_tokens (mid_id, revoked_at);

CREATE TABLE audit_events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT COLLATE "C" NOT NULL UNIQUE,
    chain_id    TEXT NOT NULL,
    chain_seq   BIGINT NOT NULL,
    account_id  TEXT,
    at          BIGINT NOT NULL,
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
    seq      BIGINT NOT NULL,
    hash     TEXT NOT NULL
);

-- Append-only: every UPDATE, DELETE or TRUNCATE of the audit table is refused, including
-- the update half of INSERT ... ON CONFLICT DO UPDATE.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT,
    response_body TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
