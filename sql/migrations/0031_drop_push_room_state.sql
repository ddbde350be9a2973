-- +goose Up
-- The push rules' room state comes from the rooms projector's own current state
-- (room_state, room_events): these copies are not needed.
DROP TABLE push_room_members;
DROP TABLE push_room_power_levels;

-- +goose Down
SELECT 1;
