-- +goose Up
-- Read model (projector "receipts"): each user's latest receipt of each type and thread
-- in each room, numbered in log order for sync tokens.
CREATE TABLE receipts (
    room_id text NOT NULL,
    user_id text NOT NULL,
    receipt_type text NOT NULL,
    thread_id text NOT NULL,
    event_id text NOT NULL,
    ts bigint NOT NULL,
    stream_ordering bigint NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_ordering ON receipts (stream_ordering);

-- +goose Down
SELECT 1;
