-- name: SyncPositions :one
SELECT (SELECT coalesce(max(stream_ordering), 0) FROM room_events)::bigint AS rooms,
       (SELECT coalesce(max(stream_ordering), 0) FROM account_data)::bigint AS account_data,
       (SELECT coalesce(max(stream_ordering), 0) FROM user_presence)::bigint AS presence,
       (SELECT coalesce(max(stream_ordering), 0) FROM receipts)::bigint AS receipts,
       coalesce((SELECT stream_ordering FROM device_inbox_position), 0)::bigint AS to_device,
       (SELECT coalesce(max(stream_ordering), 0) FROM device_list_changes)::bigint AS device_lists;

-- name: SyncMemberships :many
-- The user's membership of every room as it was at @at (the sync's upper bound), with
-- the ordering of the membership event.
SELECT room_id, coalesce(membership, '')::text AS membership, from_ordering FROM room_state
WHERE type = 'm.room.member' AND state_key = @user_id
  AND from_ordering <= @at AND (to_ordering IS NULL OR to_ordering > @at);

-- name: SyncRoomsWithEvents :many
-- Of @room_ids, those with events after @since up to @at, how many, and how many of
-- them are member events.
SELECT room_id, count(*)::bigint AS n, (count(*) FILTER (WHERE type = 'm.room.member'))::bigint AS members FROM room_events
WHERE stream_ordering > @since AND stream_ordering <= @at AND room_id = ANY(@room_ids::text[])
GROUP BY room_id;

-- name: SyncStateChanged :many
-- The state keys of a room whose event changed after @since up to @upto.
SELECT DISTINCT type, state_key FROM room_state
WHERE room_id = @room_id AND from_ordering > @since AND from_ordering <= @upto;

-- name: SyncAccountData :many
SELECT room_id, type, content::text AS content FROM account_data
WHERE user_id = @user_id AND stream_ordering > @since AND stream_ordering <= @at
ORDER BY stream_ordering;

-- name: SyncPresence :many
-- Presence changes after @since up to @at of the given users.
SELECT p.user_id, p.presence, p.status_msg, p.updated_at,
       greatest(p.updated_at, coalesce((SELECT max(d.last_seen_ts) FROM devices d WHERE d.user_id = p.user_id), p.updated_at))::timestamptz AS last_active
FROM user_presence p
WHERE p.stream_ordering > @since AND p.stream_ordering <= @at AND p.user_id = ANY(@user_ids::text[])
ORDER BY p.stream_ordering;

-- name: CoMembersAt :many
-- The users joined at @at to any of @room_ids.
SELECT DISTINCT state_key FROM room_state
WHERE room_id = ANY(@room_ids::text[]) AND type = 'm.room.member' AND membership = 'join'
  AND from_ordering <= @at AND (to_ordering IS NULL OR to_ordering > @at);

-- name: SyncReceipts :many
-- Receipts in @room_ids that changed after @since up to @at.
SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts
WHERE stream_ordering > @since AND stream_ordering <= @at AND room_id = ANY(@room_ids::text[])
ORDER BY stream_ordering;

-- name: SyncToDevice :many
-- A device's messages up to @at, oldest first: those after @since to deliver, and
-- whether any at or before it are left to delete.
SELECT stream_ordering, sender, type, content::text AS content FROM device_inbox
WHERE user_id = @user_id AND device_id = @device_id AND stream_ordering <= @at
ORDER BY stream_ordering LIMIT 200;

-- name: SyncUnreadCounts :many
-- The viewer's notifying events in @room_ids after their read receipts (m.read or
-- m.read.private; an unthreaded receipt covers every thread), by room and thread.
SELECT a.room_id, a.thread_id, count(*)::bigint AS notifications, (count(*) FILTER (WHERE a.highlight))::bigint AS highlights
FROM event_push_actions a
WHERE a.user_id = @user_id AND a.room_id = ANY(@room_ids::text[])
  AND a.stream_ordering > coalesce((
      SELECT max(re.stream_ordering) FROM receipts r JOIN room_events re ON re.event_id = r.event_id
      WHERE r.user_id = @user_id AND r.room_id = a.room_id AND r.receipt_type IN ('m.read', 'm.read.private')
        AND (r.thread_id = '' OR r.thread_id = a.thread_id)), 0)
GROUP BY a.room_id, a.thread_id;
