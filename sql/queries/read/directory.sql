-- name: RoomAliasLookup :one
SELECT room_id FROM room_aliases WHERE alias = @alias;

-- name: RoomAliasesOfRoom :many
SELECT alias FROM room_aliases WHERE room_id = @room_id ORDER BY alias COLLATE "C";

-- name: PublicRoomsPage :many
-- One page of the room directory (spec: client-server API, "Listing rooms"): the
-- published rooms that have joined members and that anyone may join, knock on or read
-- (Synapse's rule: invite-only rooms do not belong in a public list), filtered by
-- @search (name, topic or canonical alias, case-insensitive) and by room type
-- (@untyped: rooms without one), ordered by joined members (most first) then room ID
-- (byte order, whatever the database's collation).
-- @has_cursor pages from (@cursor_joined, @cursor_room): after it when @forward,
-- before it (in reverse order) otherwise. total counts every matching room.
WITH listed AS (
    SELECT (r.room_id COLLATE "C")::text AS room_id, r.room_type,
           (SELECT count(*) FROM room_state m
            WHERE m.room_id = r.room_id AND m.type = 'm.room.member'
              AND m.to_ordering IS NULL AND m.membership = 'join')::bigint AS joined,
           st.name, st.topic, st.avatar_url, st.canonical_alias, st.join_rule, st.history_visibility, st.guest_access
    FROM rooms r
    CROSS JOIN LATERAL (
        SELECT
            coalesce(max(CASE WHEN s.type = 'm.room.name' AND json_typeof(e.event->'content'->'name') = 'string'
                              THEN e.event->'content'->>'name' END), '')::text AS name,
            coalesce(max(CASE WHEN s.type = 'm.room.topic' AND json_typeof(e.event->'content'->'topic') = 'string'
                              THEN e.event->'content'->>'topic' END), '')::text AS topic,
            coalesce(max(CASE WHEN s.type = 'm.room.avatar' AND json_typeof(e.event->'content'->'url') = 'string'
                              THEN e.event->'content'->>'url' END), '')::text AS avatar_url,
            coalesce(max(CASE WHEN s.type = 'm.room.canonical_alias' AND json_typeof(e.event->'content'->'alias') = 'string'
                              THEN e.event->'content'->>'alias' END), '')::text AS canonical_alias,
            coalesce(max(CASE WHEN s.type = 'm.room.join_rules' AND json_typeof(e.event->'content'->'join_rule') = 'string'
                              THEN e.event->'content'->>'join_rule' END), '')::text AS join_rule,
            coalesce(max(CASE WHEN s.type = 'm.room.history_visibility' AND json_typeof(e.event->'content'->'history_visibility') = 'string'
                              THEN e.event->'content'->>'history_visibility' END), '')::text AS history_visibility,
            coalesce(max(CASE WHEN s.type = 'm.room.guest_access' AND json_typeof(e.event->'content'->'guest_access') = 'string'
                              THEN e.event->'content'->>'guest_access' END), '')::text AS guest_access
        FROM room_state s JOIN room_events e ON e.event_id = s.event_id
        WHERE s.room_id = r.room_id AND s.state_key = '' AND s.to_ordering IS NULL
          AND s.type IN ('m.room.name', 'm.room.topic', 'm.room.avatar', 'm.room.canonical_alias',
                         'm.room.join_rules', 'm.room.history_visibility', 'm.room.guest_access')
    ) st
    WHERE r.published
), matching AS (
    SELECT l.*, count(*) OVER () AS total FROM listed l
    WHERE l.joined > 0
      AND (l.join_rule IN ('public', 'knock', 'knock_restricted') OR l.history_visibility = 'world_readable')
      AND (@search::text = ''
           OR strpos(lower(l.name), lower(@search::text)) > 0
           OR strpos(lower(l.topic), lower(@search::text)) > 0
           OR strpos(lower(l.canonical_alias), lower(@search::text)) > 0)
      AND (NOT @filter_types::boolean OR l.room_type = ANY(@room_types::text[]) OR (@untyped::boolean AND l.room_type IS NULL))
)
SELECT room_id, room_type, joined, name, topic, avatar_url, canonical_alias, join_rule, history_visibility, guest_access,
       total::bigint AS total
FROM matching
WHERE NOT @has_cursor::boolean
   OR (@forward::boolean AND (joined < @cursor_joined::bigint OR joined = @cursor_joined::bigint AND room_id > @cursor_room::text))
   OR (NOT @forward::boolean AND (joined > @cursor_joined::bigint OR joined = @cursor_joined::bigint AND room_id < @cursor_room::text))
ORDER BY CASE WHEN @forward::boolean THEN joined END DESC,
         CASE WHEN @forward::boolean THEN room_id END,
         CASE WHEN NOT @forward::boolean THEN joined END,
         CASE WHEN NOT @forward::boolean THEN room_id END DESC
LIMIT @lim::int;
