-- +goose Up
-- Read models (projector "notifications"): the events that notify each local user by
-- the push rules, and the room state the rules look at (joined members with their
-- display names, power levels), kept by the projector itself so that it depends on
-- the log alone.
CREATE TABLE push_room_members (
    room_id text NOT NULL,
    user_id text NOT NULL,
    displayname text NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE push_room_power_levels (
    room_id text PRIMARY KEY,
    content json NOT NULL
);
-- thread_id: the thread root's event ID, or "main".
CREATE TABLE event_push_actions (
    user_id text NOT NULL,
    event_id text NOT NULL,
    room_id text NOT NULL,
    thread_id text NOT NULL,
    highlight boolean NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id);
CREATE INDEX event_push_actions_event ON event_push_actions (event_id);

-- +goose Down
SELECT 1;
