-- What an inventory number can carry, as a JSON list (`["sms"]`); NULL: everything its
-- country offers. Activation only takes a number that carries what the request asked for.
ALTER TABLE numbers ADD COLUMN capabilities TEXT;
