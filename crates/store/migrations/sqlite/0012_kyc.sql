-- The identity check of a customer's representative (KYC), one per SIM request at a time:
-- a new one only after the previous was rejected or expired unsubmitted. The link's token
-- is kept only as its SHA-256.
CREATE TABLE kyc_checks (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    sim_request_id  TEXT NOT NULL REFERENCES sim_requests(id),
    token_hash      TEXT NOT NULL UNIQUE,
    -- pending (link handed out), submitted, verified, rejected
    status          TEXT NOT NULL,
    -- What the representative declared; NULL until the submission. The document number
    -- goes with the documents at the purge.
    full_name       TEXT,
    date_of_birth   TEXT,
    nationality     TEXT,
    document_type   TEXT,
    document_number TEXT,
    -- The operator's reason for a rejection.
    reason          TEXT,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    submitted_at    BIGINT,
    decided_at      BIGINT,
    purged_at       BIGINT
);
CREATE INDEX kyc_checks_account ON kyc_checks (account_id, id);
CREATE INDEX kyc_checks_request ON kyc_checks (sim_request_id, id);
CREATE INDEX kyc_checks_status ON kyc_checks (status, id);

-- The ID document's images, in the database itself: the SQLite file is owner-only (0600,
-- PROTOCOL §10) and PostgreSQL keeps its data under its own account, so the documents get
-- the same protection as every other record, the same backups, and no second place to
-- secure. Deleted by the purge once the retention after the decision has passed.
CREATE TABLE kyc_documents (
    kyc_id      TEXT NOT NULL REFERENCES kyc_checks(id),
    side        TEXT NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    -- image/jpeg, image/png or application/pdf, from the file's first bytes
    media_type  TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    content     BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kyc_id, side)
);
