-- name: RoomInfo :one
SELECT room_id, room_version, creator, room_type, published FROM rooms WHERE room_id = @room_id;

-- name: RoomMembershipSpans :many
-- A user's membership of a room through time.
SELECT membership, from_ordering, to_ordering FROM room_state
WHERE room_id = @room_id AND type = 'm.room.member' AND state_key = @user_id
ORDER BY from_ordering;

-- name: RoomEventsBackward :many
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events
WHERE room_id = @room_id AND stream_ordering <= @before AND stream_ordering > @after
ORDER BY stream_ordering DESC LIMIT @lim;

-- name: RoomEventsForward :many
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events
WHERE room_id = @room_id AND stream_ordering > @after AND stream_ordering <= @before
ORDER BY stream_ordering LIMIT @lim;

-- name: RoomEventByID :one
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events WHERE event_id = @event_id;

-- name: RoomEventsByIDs :many
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events WHERE event_id = ANY(@event_ids::text[]);

-- name: RoomLastOrdering :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM room_events WHERE room_id = @room_id;

-- name: RoomStateAt :many
-- The state after the event at @at: the spans that had begun and not yet ended.
SELECT s.type, s.state_key, s.event_id, s.membership, e.stream_ordering, e.sender, e.origin_server_ts, e.event::text AS event,
       e.replaces_state, e.redacted_because, e.visibility, e.txn_id, e.txn_device
FROM room_state s JOIN room_events e ON e.event_id = s.event_id
WHERE s.room_id = @room_id AND s.from_ordering <= @at AND (s.to_ordering IS NULL OR s.to_ordering > @at)
ORDER BY s.type, s.state_key;

-- name: RoomStateEventAt :one
SELECT s.event_id, e.stream_ordering, e.sender, e.origin_server_ts, e.event::text AS event, e.replaces_state,
       e.redacted_because, e.visibility, e.membership, e.txn_id, e.txn_device
FROM room_state s JOIN room_events e ON e.event_id = s.event_id
WHERE s.room_id = @room_id AND s.type = @type AND s.state_key = @state_key
  AND s.from_ordering <= @at AND (s.to_ordering IS NULL OR s.to_ordering > @at);

-- name: RoomJoinedRooms :many
SELECT room_id FROM room_state
WHERE type = 'm.room.member' AND state_key = @user_id AND to_ordering IS NULL AND membership = 'join'
ORDER BY room_id;

-- name: RoomEventAtOrAfterTS :one
SELECT event_id, origin_server_ts FROM room_events
WHERE room_id = @room_id AND origin_server_ts >= @ts ORDER BY origin_server_ts, stream_ordering LIMIT 1;

-- name: RoomEventAtOrBeforeTS :one
SELECT event_id, origin_server_ts FROM room_events
WHERE room_id = @room_id AND origin_server_ts <= @ts ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1;

-- name: EventReportList :many
SELECT report_id, room_id, event_id, reporter, reason, score, reported_at FROM event_reports
ORDER BY report_id DESC LIMIT @lim;

-- name: ErasedUsersAll :many
SELECT user_id, erased_at FROM erased_users;

-- name: RoomEventPDUs :many
SELECT event_id, pdu::text AS pdu FROM room_event_pdus WHERE event_id = ANY(@event_ids::text[]);
