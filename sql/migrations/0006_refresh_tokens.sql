-- +goose Up
-- Write model (package commands): refresh tokens, by SHA-256, each usable once.
CREATE TABLE writemodel.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    user_id text NOT NULL,
    device_id text NOT NULL
);
CREATE INDEX refresh_tokens_device ON writemodel.refresh_tokens (user_id, device_id);

-- Read model (projector "accounts"): the refresh token an access token was issued with;
-- refreshing revokes the access tokens of the refresh token used.
ALTER TABLE access_tokens ADD COLUMN refresh_hash bytea;
CREATE INDEX access_tokens_refresh ON access_tokens (refresh_hash) WHERE refresh_hash IS NOT NULL;

-- +goose Down
SELECT 1;
