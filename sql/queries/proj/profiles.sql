-- name: ProfileInsert :exec
INSERT INTO profiles (user_id, displayname) VALUES (@user_id, sqlc.narg(displayname))
ON CONFLICT (user_id) DO NOTHING;

-- name: ProfileSetDisplayname :exec
UPDATE profiles SET displayname = sqlc.narg(displayname) WHERE user_id = @user_id;

-- name: ProfileSetAvatarURL :exec
UPDATE profiles SET avatar_url = sqlc.narg(avatar_url) WHERE user_id = @user_id;

-- name: ProfileClear :exec
UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = @user_id;
