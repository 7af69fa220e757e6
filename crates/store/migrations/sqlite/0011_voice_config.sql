-- The voice configuration of a mobile identity (PROTOCOL §3.4): the URL where the agent takes
-- its calls, and the secret that signs what the server sends there. One row per MID, made
-- the first time either is set.
CREATE TABLE voice_configs (
    mid_id                TEXT PRIMARY KEY REFERENCES mobile_identities(id),
    account_id            TEXT NOT NULL REFERENCES accounts(id),
    -- The normalised https:// or wss:// URL the guard accepted; NULL when cleared.
    voice_url             TEXT,
    -- Plaintext, because it signs every call set-up (PROTOCOL §10), like a webhook secret.
    signing_secret        TEXT,
    signing_secret_prefix TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
