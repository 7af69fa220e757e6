-- In-flight claims expire after a short lease instead of blocking their key for the whole
-- window, and only the claim's holder may complete or release it. Expired rows are swept
-- through the existing index on created_at (idempotency_keys_age).
ALTER TABLE idempotency_keys ADD COLUMN lease_until INTEGER;
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT;
