-- A tenant's events are its chain: chain_id is the account's id, and chain_seq orders them
-- as seq does. The tenant's list reads the (chain_id, chain_seq) index, so every appended
-- event writes one index less.
DROP INDEX audit_events_account;
