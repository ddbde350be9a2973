-- name: RoomLock :exec
-- Serialises the commands of one room. An advisory lock, not SELECT ... FOR UPDATE: a
-- row lock gives the transaction its ID before it waits, and the log orders events by
-- transaction ID, so a waiter could land in the log before the event it builds on.
SELECT pg_advisory_xact_lock(hashtextextended('room:' || @room_id::text, 0));

-- name: RoomGet :one
SELECT room_id, room_version, max_depth FROM writemodel.rooms WHERE room_id = @room_id;

-- name: RoomInsert :exec
-- A new room, whose create event is its forward extremity (@extremity: see RoomEventAdd).
INSERT INTO writemodel.rooms (room_id, room_version, max_depth, extremities)
VALUES (@room_id, @room_version, @max_depth, json_build_array(@extremity::json));

-- name: RoomSetPublished :exec
UPDATE writemodel.rooms SET published = @published WHERE room_id = @room_id;

-- name: RoomEventInsert :exec
INSERT INTO writemodel.room_events (event_id, room_id, sender, type, state_key, depth, pdu)
VALUES (@event_id, @room_id, @sender, @type, @state_key, @depth, @pdu);

-- name: RoomEventAdd :exec
-- A room event other than the room's creation, in one statement: the event, the room's
-- depth and forward extremities, and the client transaction that sent it, when @txn_id
-- is not empty (a transaction already there fails the statement: see Commands.sendAhead). The event is a forward extremity (@extremity: its event_id, depth and,
-- in room versions 1 and 2, reference hash), and those it names in prev_events are no
-- more; the extremities stay ordered by depth, newest first, then event ID.
WITH ev AS (
    INSERT INTO writemodel.room_events (event_id, room_id, sender, type, state_key, depth, pdu)
    VALUES (@event_id, @room_id, @sender, @type, @state_key, @depth, @pdu)
), txn AS (
    INSERT INTO writemodel.room_txns (user_id, device_id, scope, txn_id, event_id)
    SELECT @sender, @device_id::text, @scope::text, @txn_id::text, @event_id WHERE @txn_id::text <> ''
)
UPDATE writemodel.rooms r SET max_depth = greatest(r.max_depth, @depth::bigint),
    extremities = (SELECT json_agg(x ORDER BY (x->>'depth')::bigint DESC, x->>'event_id') FROM (
        SELECT x FROM json_array_elements(r.extremities) x WHERE NOT (x->>'event_id' = ANY(@prev_events::text[]))
        UNION ALL
        SELECT @extremity::json) u)
WHERE r.room_id = @room_id;

-- name: RoomEventGet :one
SELECT event_id, room_id, sender, type, state_key, depth, pdu FROM writemodel.room_events WHERE event_id = @event_id;

-- name: RoomStateSet :exec
INSERT INTO writemodel.room_state (room_id, type, state_key, event_id, membership)
VALUES (@room_id, @type, @state_key, @event_id, @membership)
ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership;

-- name: RoomStateEvents :many
-- The current state events of the given (type, state key) pairs.
SELECT s.type, s.state_key, e.event_id, e.pdu::text AS pdu
FROM writemodel.room_state s
JOIN writemodel.room_events e ON e.event_id = s.event_id
WHERE s.room_id = @room_id
  AND (s.type, s.state_key) IN (SELECT unnest(@types::text[]), unnest(@state_keys::text[]));

-- name: RoomMembersByMembership :many
SELECT state_key FROM writemodel.room_state
WHERE room_id = @room_id AND type = 'm.room.member' AND membership = @membership
ORDER BY state_key;

-- name: RoomTxnGet :one
SELECT event_id FROM writemodel.room_txns
WHERE user_id = @user_id AND device_id = @device_id AND scope = @scope AND txn_id = @txn_id;

-- name: RoomTxnInsert :exec
INSERT INTO writemodel.room_txns (user_id, device_id, scope, txn_id, event_id)
VALUES (@user_id, @device_id, @scope, @txn_id, @event_id) ON CONFLICT DO NOTHING;

-- name: RoomAliasGet :one
SELECT alias, room_id, creator FROM writemodel.room_aliases WHERE alias = @alias;

-- name: RoomAliasInsert :exec
INSERT INTO writemodel.room_aliases (alias, room_id, creator) VALUES (@alias, @room_id, @creator);

-- name: RoomAliasDelete :exec
DELETE FROM writemodel.room_aliases WHERE alias = @alias;

-- name: RoomAliasesByRoom :many
SELECT alias FROM writemodel.room_aliases WHERE room_id = @room_id ORDER BY alias;

-- name: RoomOpen :one
-- Everything a command needs to build a room's next event, in one round trip: the room,
-- the head of its stream in the log (which the room's lock keeps still), its forward
-- extremities, the current state events of the given keys, and the event of an earlier
-- attempt of the client transaction, if any. When the head is still @known_version, the
-- command remembers the extremities, and the state of the keys marked @cached, from
-- that version: those are left out.
SELECT r.room_version, r.max_depth, r.published,
    coalesce(h.stream_version, 0)::bigint AS head_version, h.hash AS head_hash,
    CASE WHEN h.stream_version = @known_version::bigint THEN '[]' ELSE r.extremities END::text AS extremities,
    coalesce((SELECT json_agg(json_build_object('type', s.type, 'state_key', s.state_key, 'event_id', e.event_id, 'pdu', e.pdu))
        FROM writemodel.room_state s JOIN writemodel.room_events e ON e.event_id = s.event_id
        WHERE s.room_id = r.room_id
          AND (s.type, s.state_key) IN (
            SELECT k.type, k.state_key FROM (SELECT unnest(@types::text[]) AS type, unnest(@state_keys::text[]) AS state_key,
                unnest(@cached::bool[]) AS cached) k
            WHERE NOT (k.cached AND h.stream_version IS NOT DISTINCT FROM @known_version::bigint))), '[]')::text AS state,
    coalesce((SELECT t.event_id FROM writemodel.room_txns t
        WHERE t.user_id = @user_id AND t.device_id = @device_id AND t.scope = @scope AND t.txn_id = @txn_id), '')::text AS txn_event
FROM writemodel.rooms r
LEFT JOIN LATERAL (SELECT e.stream_version, e.hash FROM eventlog.events e WHERE e.stream = 'room:' || r.room_id
    ORDER BY e.stream_version DESC LIMIT 1) h ON true
WHERE r.room_id = @room_id;

-- name: RoomsOfMember :many
-- The rooms a user is joined to, invited to or knocking on.
SELECT room_id FROM writemodel.room_state
WHERE type = 'm.room.member' AND state_key = @user_id AND membership IN ('join', 'invite', 'knock')
ORDER BY room_id;

-- name: RoomsJoinedBy :many
SELECT room_id FROM writemodel.room_state
WHERE type = 'm.room.member' AND state_key = @user_id AND membership = 'join'
ORDER BY room_id;
