-- name: AccountDataGet :one
SELECT content::text FROM account_data WHERE user_id = @user_id AND room_id = @room_id AND type = @type;

-- name: RoomTagsGet :many
SELECT tag, content::text AS content FROM room_tags WHERE user_id = @user_id AND room_id = @room_id ORDER BY tag;
