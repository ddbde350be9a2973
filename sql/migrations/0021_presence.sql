-- +goose Up
-- Read model (projector "presence"): each user's last presence.
CREATE TABLE user_presence (
    user_id text PRIMARY KEY,
    presence text NOT NULL,
    status_msg text,
    updated_at timestamptz NOT NULL
);

-- +goose Down
SELECT 1;
