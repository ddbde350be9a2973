-- name: EventPushActionsInsert :exec
-- An event's notifications, one row per user, in one statement.
INSERT INTO event_push_actions (user_id, event_id, room_id, thread_id, highlight, stream_ordering)
SELECT unnest(@user_ids::text[]), @event_id, @room_id, @thread_id, unnest(@highlights::boolean[]), @stream_ordering;

-- name: EventPushActionsDeleteEvent :exec
DELETE FROM event_push_actions WHERE event_id = @event_id;
