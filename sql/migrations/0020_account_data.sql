-- +goose Up
-- Read models (projector "account_data"): users' account data (room_id '' for global)
-- and room tags.
CREATE TABLE account_data (
    user_id text NOT NULL,
    room_id text NOT NULL,
    type text NOT NULL,
    content json NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);

CREATE TABLE room_tags (
    user_id text NOT NULL,
    room_id text NOT NULL,
    tag text NOT NULL,
    content json NOT NULL,
    PRIMARY KEY (user_id, room_id, tag)
);

-- +goose Down
SELECT 1;
