-- Every send writes each index on messages, so keep only those a query needs. Listing a
-- MID's messages in both directions merges the two directions' runs of
-- messages_mid_direction, so messages_mid is not needed. Telco references are looked up
-- for inbound messages only, so outbound sends and hand-offs no longer write that index.
DROP INDEX messages_mid;
DROP INDEX messages_telco_ref;
CREATE INDEX messages_inbound_telco_ref ON messages (mid_id, telco_ref, id) WHERE direction = 'inbound';
