-- +goose Up
-- Read model (projector "rooms"): users who deactivated with erase. Users who come to a
-- room after the erasure (stream ordering erased_at) get the erased user's events
-- redacted (spec: POST /account/deactivate, erase).
CREATE TABLE erased_users (
    user_id text PRIMARY KEY,
    erased_at bigint NOT NULL
);

-- +goose Down
SELECT 1;
