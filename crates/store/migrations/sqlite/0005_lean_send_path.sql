-- Every send writes a page of each b-tree it touches, so the send path touches fewer.
--
-- Listing a MID's messages in both directions merges the two directions' runs of
-- messages_mid_direction, so messages_mid is not needed. Telco references are looked up
-- for inbound messages only, so outbound sends and hand-offs no longer write that index.
--
-- messages, outbox and destination_usage are found by their primary key: stored as that
-- key's b-tree, a row is one b-tree write instead of a rowid table's and its key index's.

CREATE TABLE messages_by_id (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    mid_id       TEXT NOT NULL REFERENCES mobile_identities(id),
    direction    TEXT NOT NULL,
    from_number  TEXT NOT NULL,
    to_number    TEXT NOT NULL,
    body         TEXT NOT NULL,
    segments     INTEGER NOT NULL,
    encoding     TEXT NOT NULL,
    cost         INTEGER NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    handed_at    INTEGER,
    sent_at      INTEGER,
    delivered_at INTEGER,
    telco_ref    TEXT,
    retry_count  INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO messages_by_id SELECT id, account_id, mid_id, direction, from_number, to_number,
    body, segments, encoding, cost, status, created_at, handed_at, sent_at, delivered_at,
    telco_ref, retry_count, error, updated_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_by_id RENAME TO messages;
CREATE INDEX messages_mid_direction ON messages (mid_id, direction, id);
CREATE INDEX messages_inbound_telco_ref ON messages (mid_id, telco_ref, id) WHERE direction = 'inbound';

CREATE TABLE outbox_by_id (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    ref_id      TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO outbox_by_id SELECT id, kind, ref_id, due_at, lease_until, attempts, created_at
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_by_id RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (due_at);
CREATE INDEX outbox_ref ON outbox (ref_id);

CREATE TABLE destination_usage_by_key (
    mid_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    destination TEXT NOT NULL,
    hour_start  INTEGER NOT NULL,
    hour_count  INTEGER NOT NULL,
    day_start   INTEGER NOT NULL,
    day_count   INTEGER NOT NULL,
    PRIMARY KEY (mid_id, kind, destination)
) WITHOUT ROWID;
INSERT INTO destination_usage_by_key SELECT mid_id, kind, destination, hour_start, hour_count,
    day_start, day_count FROM destination_usage;
DROP TABLE destination_usage;
ALTER TABLE destination_usage_by_key RENAME TO destination_usage;
