-- name: UserGet :one
SELECT user_id, localpart, password_hash, is_guest, is_admin, deactivated
FROM writemodel.users WHERE user_id = @user_id;

-- name: UserLocalpartTaken :one
SELECT EXISTS (SELECT 1 FROM writemodel.users WHERE localpart = @localpart);

-- name: UserInsert :exec
INSERT INTO writemodel.users (user_id, localpart, password_hash, is_guest, is_admin)
VALUES (@user_id, @localpart, @password_hash, @is_guest, @is_admin);

-- name: DeviceInsert :exec
INSERT INTO writemodel.devices (user_id, device_id) VALUES (@user_id, @device_id)
ON CONFLICT DO NOTHING;

-- name: DeviceDelete :exec
DELETE FROM writemodel.devices WHERE user_id = @user_id AND device_id = @device_id;

-- name: DeviceDeleteAllByUser :exec
DELETE FROM writemodel.devices WHERE user_id = @user_id;

-- name: DeviceExists :one
SELECT EXISTS (SELECT 1 FROM writemodel.devices WHERE user_id = @user_id AND device_id = @device_id);

-- name: DeviceListByUser :many
SELECT device_id FROM writemodel.devices WHERE user_id = @user_id ORDER BY device_id;

-- name: UserSetPassword :exec
UPDATE writemodel.users SET password_hash = @password_hash WHERE user_id = @user_id;

-- name: UserDeactivate :exec
UPDATE writemodel.users SET deactivated = true WHERE user_id = @user_id;

-- name: RefreshTokenGet :one
SELECT token_hash, user_id, device_id, next_hash FROM writemodel.refresh_tokens WHERE token_hash = @token_hash;

-- name: RefreshTokenPredecessor :many
SELECT token_hash FROM writemodel.refresh_tokens WHERE next_hash = @next_hash;

-- name: RefreshTokenSetNext :exec
UPDATE writemodel.refresh_tokens SET next_hash = @next_hash WHERE token_hash = @token_hash;

-- name: RefreshTokenInsert :exec
INSERT INTO writemodel.refresh_tokens (token_hash, user_id, device_id) VALUES (@token_hash, @user_id, @device_id)
ON CONFLICT DO NOTHING;

-- name: RefreshTokenDelete :exec
DELETE FROM writemodel.refresh_tokens WHERE token_hash = @token_hash;

-- name: RefreshTokenDeleteByDevice :exec
DELETE FROM writemodel.refresh_tokens WHERE user_id = @user_id AND device_id = @device_id;

-- name: RefreshTokenDeleteByUser :exec
DELETE FROM writemodel.refresh_tokens WHERE user_id = @user_id;

-- name: UserUpgradeGuest :exec
UPDATE writemodel.users SET is_guest = false, password_hash = @password_hash WHERE user_id = @user_id;

-- name: DeviceListExisting :many
SELECT device_id FROM writemodel.devices
WHERE user_id = @user_id AND device_id = ANY (@device_ids::text[]) ORDER BY device_id;
