-- name: ThreepidSessionGet :one
SELECT sid, client_secret_hash, medium, address, purpose, token_hash, send_attempt, next_link,
       expires_at, validated_at, used_by_uia
FROM writemodel.threepid_sessions WHERE sid = @sid;

-- name: ThreepidSessionFindPending :one
SELECT sid, send_attempt FROM writemodel.threepid_sessions
WHERE client_secret_hash = @client_secret_hash AND medium = @medium AND address = @address
  AND purpose = @purpose AND validated_at IS NULL
ORDER BY sid LIMIT 1;

-- name: ThreepidSessionByUIA :one
SELECT sid, medium, address, validated_at FROM writemodel.threepid_sessions
WHERE used_by_uia = @used_by_uia
ORDER BY sid LIMIT 1;

-- name: ThreepidSessionUpsert :exec
INSERT INTO writemodel.threepid_sessions
    (sid, client_secret_hash, medium, address, purpose, token_hash, send_attempt, next_link, expires_at)
VALUES (@sid, @client_secret_hash, @medium, @address, @purpose, @token_hash, @send_attempt, @next_link, @expires_at)
ON CONFLICT (sid) DO UPDATE SET
    token_hash = excluded.token_hash, send_attempt = excluded.send_attempt,
    next_link = excluded.next_link, expires_at = excluded.expires_at;

-- name: ThreepidSessionValidate :exec
UPDATE writemodel.threepid_sessions SET validated_at = @validated_at
WHERE sid = @sid AND validated_at IS NULL;

-- name: ThreepidSessionUse :exec
UPDATE writemodel.threepid_sessions SET used_by_uia = @used_by_uia WHERE sid = @sid;

-- name: UserThreepidGet :one
SELECT medium, address, user_id, validated_at FROM writemodel.user_threepids
WHERE medium = @medium AND address = @address;

-- name: UserThreepidInsert :exec
INSERT INTO writemodel.user_threepids (medium, address, user_id, validated_at)
VALUES (@medium, @address, @user_id, @validated_at)
ON CONFLICT (medium, address) DO UPDATE SET user_id = excluded.user_id, validated_at = excluded.validated_at;

-- name: UserThreepidDelete :exec
DELETE FROM writemodel.user_threepids WHERE medium = @medium AND address = @address AND user_id = @user_id;

-- name: UserThreepidDeleteByUser :exec
DELETE FROM writemodel.user_threepids WHERE user_id = @user_id;

-- name: ThreepidBindingInsert :exec
INSERT INTO writemodel.threepid_bindings (user_id, medium, address, id_server)
VALUES (@user_id, @medium, @address, @id_server) ON CONFLICT DO NOTHING;

-- name: ThreepidBindingDelete :exec
DELETE FROM writemodel.threepid_bindings
WHERE user_id = @user_id AND medium = @medium AND address = @address AND id_server = @id_server;

-- name: ThreepidBindingsOf :many
-- A user's bindings, of one 3PID when @medium and @address are not empty.
SELECT medium, address, id_server FROM writemodel.threepid_bindings
WHERE user_id = @user_id AND (@medium::text = '' OR medium = @medium AND address = @address)
ORDER BY medium, address, id_server;
