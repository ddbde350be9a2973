-- name: PresenceMaxOrdering :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM user_presence;

-- name: PresenceUpsert :exec
INSERT INTO user_presence (user_id, presence, status_msg, updated_at, stream_ordering) VALUES (@user_id, @presence, @status_msg, @updated_at, @stream_ordering)
ON CONFLICT (user_id) DO UPDATE SET presence = excluded.presence, status_msg = excluded.status_msg, updated_at = excluded.updated_at,
    stream_ordering = excluded.stream_ordering;
