-- name: UserFilterInsert :exec
INSERT INTO user_filters (user_id, filter_id, filter) VALUES (@user_id, @filter_id, @filter)
ON CONFLICT DO NOTHING;
