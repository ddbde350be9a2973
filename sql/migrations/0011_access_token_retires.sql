-- +goose Up
-- Read model (projector "accounts"): the refresh token that the first use of this
-- access token retires (the one it was refreshed from; spec: "Refreshing access
-- tokens"). Cleared once retired.
ALTER TABLE access_tokens ADD COLUMN retires bytea;

-- +goose Down
SELECT 1;
