-- +goose Up
-- Write model (package commands): the rooms of a member, for deactivation.
CREATE INDEX room_state_member_rooms ON writemodel.room_state (state_key, room_id) WHERE type = 'm.room.member';

-- +goose Down
SELECT 1;
