-- name: RoomEventsLastInRoom :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM room_events WHERE room_id = @room_id;

-- name: RoomProjInsert :exec
INSERT INTO rooms (room_id, room_version, creator, room_type) VALUES (@room_id, @room_version, @creator, @room_type)
ON CONFLICT DO NOTHING;

-- name: RoomProjSetPublished :exec
UPDATE rooms SET published = @published WHERE room_id = @room_id;

-- name: RoomEventProjInsert :exec
-- A room event in its client form, and its PDU (federation form), in one statement.
WITH pdu AS (INSERT INTO room_event_pdus (event_id, pdu) VALUES (@event_id, @pdu))
INSERT INTO room_events (stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, depth, event,
    replaces_state, visibility, membership, txn_id, txn_device, rel_type, relates_to)
VALUES (@stream_ordering, @event_id, @room_id, @type, @state_key, @sender, @origin_server_ts, @depth, @event,
    @replaces_state, @visibility, @membership, @txn_id, @txn_device, @rel_type, @relates_to);

-- name: RoomEventProjGet :one
SELECT e.event_id, e.room_id, e.type, e.event::text AS event, r.room_version
FROM room_events e JOIN rooms r ON r.room_id = e.room_id
WHERE e.event_id = @event_id;

-- name: RoomEventProjRedact :exec
UPDATE room_events SET event = @event, redacted_because = @redacted_because, rel_type = NULL, relates_to = NULL
WHERE event_id = @event_id;

-- name: RoomStateProjClose :exec
UPDATE room_state SET to_ordering = @to_ordering
WHERE room_id = @room_id AND type = @type AND state_key = @state_key AND to_ordering IS NULL;

-- name: RoomStateProjInsert :exec
INSERT INTO room_state (room_id, type, state_key, event_id, from_ordering, membership)
VALUES (@room_id, @type, @state_key, @event_id, @from_ordering, @membership);

-- name: RoomAliasProjInsert :exec
INSERT INTO room_aliases (alias, room_id, creator) VALUES (@alias, @room_id, @creator)
ON CONFLICT (alias) DO UPDATE SET room_id = excluded.room_id, creator = excluded.creator;

-- name: RoomAliasProjDelete :exec
DELETE FROM room_aliases WHERE alias = @alias;

-- name: RoomForgottenUpsert :exec
INSERT INTO rooms_forgotten (user_id, room_id, up_to) VALUES (@user_id, @room_id, @up_to)
ON CONFLICT (user_id, room_id) DO UPDATE SET up_to = excluded.up_to;

-- name: EventReportsMaxID :one
SELECT coalesce(max(report_id), 0)::bigint FROM event_reports;

-- name: EventReportInsert :exec
INSERT INTO event_reports (report_id, room_id, event_id, reporter, reason, score, reported_at)
VALUES (@report_id, @room_id, @event_id, @reporter, @reason, @score, @reported_at);

-- name: RoomsBatchPrelude :one
-- What the rooms projector reads before a batch, in one round trip: the last stream
-- ordering, the current history visibility of the batch's rooms, the current event
-- of the state keys its state events replace, and what the push rules look at (the
-- rooms' joined members with display names, and power levels, from the current state).
SELECT
    (SELECT coalesce(max(stream_ordering), 0) FROM room_events)::bigint AS max_ordering,
    coalesce((SELECT json_agg(json_build_object('room_id', s.room_id, 'hv', e.event->'content'->>'history_visibility'))
        FROM room_state s JOIN room_events e ON e.event_id = s.event_id
        WHERE s.room_id = ANY(@rooms::text[]) AND s.type = 'm.room.history_visibility' AND s.state_key = ''
          AND s.to_ordering IS NULL), '[]')::text AS visibilities,
    coalesce((SELECT json_agg(json_build_object('room_id', s.room_id, 'type', s.type, 'state_key', s.state_key, 'event_id', s.event_id))
        FROM room_state s
        WHERE s.to_ordering IS NULL
          AND (s.room_id, s.type, s.state_key) IN (SELECT unnest(@state_rooms::text[]), unnest(@state_types::text[]), unnest(@state_keys::text[]))), '[]')::text AS current_state,
    coalesce((SELECT json_agg(json_build_array(s.room_id, s.state_key,
                 coalesce(nullif(e.event->'content'->>'displayname', ''), s.state_key)))
        FROM room_state s JOIN room_events e ON e.event_id = s.event_id
        WHERE s.room_id = ANY(@rooms::text[]) AND s.type = 'm.room.member' AND s.membership = 'join'
          AND s.to_ordering IS NULL), '[]')::text AS push_members,
    coalesce((SELECT json_agg(json_build_array(s.room_id, e.event->'content'))
        FROM room_state s JOIN room_events e ON e.event_id = s.event_id
        WHERE s.room_id = ANY(@rooms::text[]) AND s.type = 'm.room.power_levels' AND s.state_key = ''
          AND s.to_ordering IS NULL), '[]')::text AS push_power;

-- name: ErasedUserInsert :exec
INSERT INTO erased_users (user_id, erased_at) VALUES (@user_id, @erased_at) ON CONFLICT DO NOTHING;

-- name: RoomsJoinedByUsers :many
-- The rooms any of @user_ids is joined to now.
SELECT DISTINCT room_id FROM room_state
WHERE type = 'm.room.member' AND membership = 'join' AND to_ordering IS NULL AND state_key = ANY(@user_ids::text[]);

-- name: RoomEventPDURedact :exec
UPDATE room_event_pdus SET pdu = @pdu WHERE event_id = @event_id;

-- name: RoomEventPDUGet :one
SELECT pdu::text FROM room_event_pdus WHERE event_id = @event_id;
