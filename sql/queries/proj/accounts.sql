-- name: AccountInsert :exec
INSERT INTO accounts (user_id, localpart, is_guest, is_admin, deactivated, created_at)
VALUES (@user_id, @localpart, @is_guest, @is_admin, false, @created_at)
ON CONFLICT (user_id) DO NOTHING;

-- name: DeviceUpsert :exec
INSERT INTO devices (user_id, device_id, display_name, created_at)
VALUES (@user_id, @device_id, @display_name, @created_at)
ON CONFLICT (user_id, device_id) DO UPDATE SET
    display_name = COALESCE(excluded.display_name, devices.display_name);

-- name: AccessTokenInsert :exec
INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, expires_at)
VALUES (@token_hash, @user_id, @device_id, @created_at, @expires_at)
ON CONFLICT (token_hash) DO NOTHING;

-- name: DeviceDeleteOne :exec
DELETE FROM devices WHERE user_id = @user_id AND device_id = @device_id;

-- name: AccessTokenDeleteByDevice :exec
DELETE FROM access_tokens WHERE user_id = @user_id AND device_id = @device_id;

-- name: DeviceDeleteByUser :exec
DELETE FROM devices WHERE user_id = @user_id;

-- name: AccessTokenDeleteByUser :exec
DELETE FROM access_tokens WHERE user_id = @user_id;
