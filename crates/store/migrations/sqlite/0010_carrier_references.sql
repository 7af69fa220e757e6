-- Carriers whose delivery receipts name only their own reference (SMPP): the message each
-- reference belongs to, and a receipt that arrived before its reference was recorded (the
-- SMSC answered submit_sm and sent the receipt before the hand-off committed). Both sides
-- write the same row, so whichever comes second finds the other.
CREATE TABLE carrier_refs (
    telco_ref TEXT PRIMARY KEY,
    msg_id TEXT,
    early_status TEXT,
    early_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX carrier_refs_early ON carrier_refs (created_at) WHERE early_status IS NOT NULL;
