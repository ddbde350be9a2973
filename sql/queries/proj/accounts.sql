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
INSERT INTO access_tokens (token_hash, user_id, device_id, created_at, expires_at, refresh_hash)
VALUES (@token_hash, @user_id, @device_id, @created_at, @expires_at, @refresh_hash)
ON CONFLICT (token_hash) DO NOTHING;

-- name: DeviceDeleteOne :exec
DELETE FROM devices WHERE user_id = @user_id AND device_id = @device_id;

-- name: AccessTokenDeleteByDevice :exec
DELETE FROM access_tokens WHERE user_id = @user_id AND device_id = @device_id;

-- name: DeviceDeleteByUser :exec
DELETE FROM devices WHERE user_id = @user_id;

-- name: AccessTokenDeleteByUser :exec
DELETE FROM access_tokens WHERE user_id = @user_id;

-- name: DeviceRename :exec
UPDATE devices SET display_name = @display_name WHERE user_id = @user_id AND device_id = @device_id;

-- name: DeviceSeen :exec
UPDATE devices SET last_seen_ip = @ip, last_seen_ts = @ts
WHERE user_id = @user_id AND device_id = @device_id AND (last_seen_ts IS NULL OR last_seen_ts <= @ts);

-- name: AccountDeactivate :exec
UPDATE accounts SET deactivated = true WHERE user_id = @user_id;

-- name: AccessTokenDeleteByRefresh :exec
DELETE FROM access_tokens WHERE refresh_hash = @refresh_hash;

-- name: AccountUpgradeGuest :exec
UPDATE accounts SET is_guest = false WHERE user_id = @user_id;

-- name: AccessTokenSetRetires :exec
UPDATE access_tokens SET retires = @retires WHERE token_hash = @token_hash;

-- name: AccessTokenClearRetires :exec
UPDATE access_tokens SET retires = NULL WHERE retires = @retires;
