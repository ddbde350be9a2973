-- name: ProfileGet :one
SELECT displayname, avatar_url FROM writemodel.profiles WHERE user_id = @user_id;

-- name: ProfileInsert :exec
INSERT INTO writemodel.profiles (user_id, displayname) VALUES (@user_id, sqlc.narg(displayname))
ON CONFLICT (user_id) DO NOTHING;

-- name: ProfileSetDisplayname :exec
UPDATE writemodel.profiles SET displayname = sqlc.narg(displayname) WHERE user_id = @user_id;

-- name: ProfileSetAvatarURL :exec
UPDATE writemodel.profiles SET avatar_url = sqlc.narg(avatar_url) WHERE user_id = @user_id;

-- name: ProfileClear :exec
UPDATE writemodel.profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = @user_id;
