-- name: PushRoomMemberUpsert :exec
INSERT INTO push_room_members (room_id, user_id, displayname) VALUES (@room_id, @user_id, @displayname)
ON CONFLICT (room_id, user_id) DO UPDATE SET displayname = excluded.displayname;

-- name: PushRoomMemberDelete :exec
DELETE FROM push_room_members WHERE room_id = @room_id AND user_id = @user_id;

-- name: PushRoomPowerLevelsUpsert :exec
INSERT INTO push_room_power_levels (room_id, content) VALUES (@room_id, @content)
ON CONFLICT (room_id) DO UPDATE SET content = excluded.content;

-- name: EventPushActionsInsert :exec
-- An event's notifications, one row per user, in one statement.
INSERT INTO event_push_actions (user_id, event_id, room_id, thread_id, highlight)
SELECT unnest(@user_ids::text[]), @event_id, @room_id, @thread_id, unnest(@highlights::boolean[])
ON CONFLICT DO NOTHING;

-- name: EventPushActionsDeleteEvent :exec
DELETE FROM event_push_actions WHERE event_id = @event_id;
