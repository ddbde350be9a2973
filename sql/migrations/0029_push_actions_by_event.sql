-- +goose Up
-- Writer: package projections (projector "rooms", which took the notifications over).
-- By event first: a redaction deletes its event's rows through the primary key, and
-- the counts go through event_push_actions_room (two indexes a row, not three).
ALTER TABLE event_push_actions DROP CONSTRAINT event_push_actions_pkey;
DROP INDEX event_push_actions_event;
ALTER TABLE event_push_actions ADD PRIMARY KEY (event_id, user_id);

-- +goose Down
SELECT 1;
