-- +goose Up
-- Unread counts read a user's notifications in a room after their read receipt: with
-- the event's stream ordering beside them, that is a range of one index instead of
-- every notification the user ever had in the room, each joined to its event.
ALTER TABLE event_push_actions ADD COLUMN stream_ordering bigint;
UPDATE event_push_actions a SET stream_ordering = e.stream_ordering FROM room_events e WHERE e.event_id = a.event_id;
DELETE FROM event_push_actions WHERE stream_ordering IS NULL;
ALTER TABLE event_push_actions ALTER COLUMN stream_ordering SET NOT NULL;
DROP INDEX event_push_actions_room;
CREATE INDEX event_push_actions_room ON event_push_actions (user_id, room_id, stream_ordering);

-- +goose Down
SELECT 1;
