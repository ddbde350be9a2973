-- name: PresenceUpsert :exec
INSERT INTO user_presence (user_id, presence, status_msg, updated_at) VALUES (@user_id, @presence, @status_msg, @updated_at)
ON CONFLICT (user_id) DO UPDATE SET presence = excluded.presence, status_msg = excluded.status_msg, updated_at = excluded.updated_at;
