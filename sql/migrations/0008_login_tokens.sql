-- +goose Up
-- Write model (package commands): short-lived, single-use m.login.token tokens, by
-- SHA-256.
CREATE TABLE writemodel.login_tokens (
    token_hash bytea PRIMARY KEY,
    user_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    used boolean NOT NULL DEFAULT false
);

-- +goose Down
SELECT 1;
