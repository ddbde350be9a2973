-- +goose Up
-- Read model (projector "to_device"): to-device messages not yet acknowledged, numbered
-- in log order for sync tokens.
CREATE TABLE device_inbox (
    user_id text NOT NULL,
    device_id text NOT NULL,
    stream_ordering bigint NOT NULL,
    sender text NOT NULL,
    type text NOT NULL,
    content json NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_ordering)
);
-- The stream's last number, which deletions must not take back.
CREATE TABLE device_inbox_position (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    stream_ordering bigint NOT NULL
);

-- +goose Down
SELECT 1;
