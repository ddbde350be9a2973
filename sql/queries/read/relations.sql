-- name: RelationMembershipSpans :many
-- A user's membership of several rooms through time (history visibility of the events
-- bundled with a page, which may come from several rooms).
SELECT room_id, membership, from_ordering, to_ordering FROM room_state
WHERE room_id = ANY(@room_ids::text[]) AND type = 'm.room.member' AND state_key = @user_id
ORDER BY room_id, from_ordering;

-- name: RelationChildren :many
-- The events relating to any of @parent_ids with one of @rel_types, without their
-- bodies: what aggregations count and choose from. The event itself only comes for
-- history visibility events, whose visibility depends on their content.
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts,
       CASE WHEN type = 'm.room.history_visibility' THEN event::text ELSE '' END::text AS event,
       visibility, membership, rel_type::text AS rel_type, relates_to::text AS relates_to,
       coalesce(json_typeof(event->'content'->'m.new_content') = 'object', false)::boolean AS has_new_content
FROM room_events
WHERE relates_to = ANY(@parent_ids::text[]) AND rel_type = ANY(@rel_types::text[])
ORDER BY stream_ordering;

-- name: RelationsBackward :many
-- A page of the events relating directly to a parent, most recent first.
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events
WHERE relates_to = @parent_id::text AND room_id = @room_id
  AND (sqlc.narg(rel_type)::text IS NULL OR rel_type = sqlc.narg(rel_type))
  AND (sqlc.narg(event_type)::text IS NULL OR type = sqlc.narg(event_type))
  AND stream_ordering <= @before AND stream_ordering > @after
ORDER BY stream_ordering DESC LIMIT @lim;

-- name: RelationsForward :many
-- A page of the events relating directly to a parent, oldest first.
SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, event::text AS event, replaces_state,
       redacted_because, visibility, membership, txn_id, txn_device
FROM room_events
WHERE relates_to = @parent_id::text AND room_id = @room_id
  AND (sqlc.narg(rel_type)::text IS NULL OR rel_type = sqlc.narg(rel_type))
  AND (sqlc.narg(event_type)::text IS NULL OR type = sqlc.narg(event_type))
  AND stream_ordering > @after AND stream_ordering <= @before
ORDER BY stream_ordering LIMIT @lim;

-- name: RelationsRecursive :many
-- A page of the events relating to a parent directly or through up to @max_depth
-- relations (recurse=true). Each event has one parent, so the relations form a tree;
-- the depth bound also ends any cycle a federated room could build. The filters apply
-- at every depth (MSC3981), the walk follows every relation.
WITH RECURSIVE related (event_id, depth) AS (
    SELECT c.event_id, 1 FROM room_events c WHERE c.relates_to = @parent_id::text AND c.room_id = @room_id
  UNION
    SELECT c.event_id, r.depth + 1 FROM room_events c JOIN related r ON c.relates_to = r.event_id
    WHERE r.depth < @max_depth::integer AND c.room_id = @room_id
)
SELECT e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, e.sender, e.origin_server_ts, e.event::text AS event,
       e.replaces_state, e.redacted_because, e.visibility, e.membership, e.txn_id, e.txn_device
FROM room_events e
WHERE e.event_id IN (SELECT related.event_id FROM related)
  AND (sqlc.narg(rel_type)::text IS NULL OR e.rel_type = sqlc.narg(rel_type))
  AND (sqlc.narg(event_type)::text IS NULL OR e.type = sqlc.narg(event_type))
  AND e.stream_ordering > @after AND e.stream_ordering <= @before
ORDER BY CASE WHEN @backward::boolean THEN -e.stream_ordering ELSE e.stream_ordering END LIMIT @lim;

-- name: ThreadRoots :many
-- The thread roots of a room by latest reply, most recent first, from the replies at or
-- before @before; with include=participated, only threads @user_id started or replied
-- to. A root must be in the room, not a state event and not itself a relation.
WITH threads AS (
    SELECT r.relates_to AS root_id, max(r.stream_ordering)::bigint AS latest, bool_or(r.sender = @user_id)::boolean AS replied
    FROM room_events r
    WHERE r.room_id = @room_id AND r.rel_type = 'm.thread'
    GROUP BY r.relates_to
)
SELECT threads.latest, e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, e.sender, e.origin_server_ts,
       e.event::text AS event, e.replaces_state, e.redacted_because, e.visibility, e.membership, e.txn_id, e.txn_device
FROM threads JOIN room_events e ON e.event_id = threads.root_id
WHERE e.room_id = @room_id AND threads.latest <= @before::bigint AND e.state_key IS NULL AND e.rel_type IS NULL
  AND (NOT @participated::boolean OR threads.replied OR e.sender = @user_id)
ORDER BY threads.latest DESC LIMIT @lim;
