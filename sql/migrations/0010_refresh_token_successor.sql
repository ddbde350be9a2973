-- +goose Up
-- Write model (package commands): the refresh token a refresh token was exchanged for.
-- The spec keeps the old token valid until its successor is used, so that a client
-- that lost the answer can refresh again.
ALTER TABLE writemodel.refresh_tokens ADD COLUMN next_hash bytea;
CREATE INDEX refresh_tokens_next ON writemodel.refresh_tokens (next_hash) WHERE next_hash IS NOT NULL;

-- +goose Down
SELECT 1;
