-- name: LoginTokenGet :one
SELECT token_hash, user_id, expires_at, used FROM writemodel.login_tokens WHERE token_hash = @token_hash;

-- name: LoginTokenInsert :exec
INSERT INTO writemodel.login_tokens (token_hash, user_id, expires_at) VALUES (@token_hash, @user_id, @expires_at)
ON CONFLICT DO NOTHING;

-- name: LoginTokenUse :exec
UPDATE writemodel.login_tokens SET used = true WHERE token_hash = @token_hash;
