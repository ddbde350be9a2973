-- name: AccountDataMaxOrdering :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM account_data;

-- name: AccountDataUpsert :exec
INSERT INTO account_data (user_id, room_id, type, content, stream_ordering) VALUES (@user_id, @room_id, @type, @content, @stream_ordering)
ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content, stream_ordering = excluded.stream_ordering;

-- name: RoomTagUpsert :exec
INSERT INTO room_tags (user_id, room_id, tag, content) VALUES (@user_id, @room_id, @tag, @content)
ON CONFLICT (user_id, room_id, tag) DO UPDATE SET content = excluded.content;

-- name: RoomTagDelete :exec
DELETE FROM room_tags WHERE user_id = @user_id AND room_id = @room_id AND tag = @tag;

-- name: RoomTagsOf :many
SELECT tag, content::text AS content FROM room_tags WHERE user_id = @user_id AND room_id = @room_id;
