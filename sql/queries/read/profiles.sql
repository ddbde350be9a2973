-- name: ProfileGet :one
SELECT displayname, avatar_url FROM profiles WHERE user_id = @user_id;
