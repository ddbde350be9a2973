-- name: RoomCurrentStateOfTypes :many
-- The current state events of the given types in the given rooms.
SELECT s.room_id, s.type, s.state_key, e.origin_server_ts, e.sender, e.event::text AS event
FROM room_state s JOIN room_events e ON e.event_id = s.event_id
WHERE s.room_id = ANY(@room_ids::text[]) AND s.to_ordering IS NULL AND s.type = ANY(@types::text[])
ORDER BY s.room_id, s.type, s.state_key;

-- name: RoomJoinedCounts :many
SELECT room_id, count(*)::bigint AS joined FROM room_state
WHERE room_id = ANY(@room_ids::text[]) AND type = 'm.room.member' AND to_ordering IS NULL AND membership = 'join'
GROUP BY room_id;

-- name: RoomMembershipsOf :many
-- A user's current membership of the given rooms.
SELECT room_id, coalesce(membership, '')::text AS membership FROM room_state
WHERE room_id = ANY(@room_ids::text[]) AND type = 'm.room.member' AND state_key = @user_id AND to_ordering IS NULL;

-- name: RoomTypes :many
SELECT room_id, room_type FROM rooms WHERE room_id = ANY(@room_ids::text[]);
