-- The public demo draws numbers from a pool of its own, never from the inventory paying
-- customers are given numbers from.
ALTER TABLE numbers ADD COLUMN pool TEXT NOT NULL DEFAULT 'main';
DROP INDEX numbers_allocation;
CREATE INDEX numbers_allocation ON numbers (pool, country, status, id);

-- The demo takes back its oldest live mobile identities; released ones are not walked.
CREATE INDEX mobile_identities_live ON mobile_identities (account_id, id) WHERE status <> 'released';
