-- name: AccountLocalpartExists :one
SELECT EXISTS (SELECT 1 FROM accounts WHERE localpart = @localpart);

-- name: AccessTokenLookup :one
SELECT t.user_id, t.device_id, t.expires_at, t.retires, a.is_guest, a.is_admin, a.deactivated
FROM access_tokens t JOIN accounts a ON a.user_id = t.user_id
WHERE t.token_hash = @token_hash;

-- name: RegistrationTokenLookup :one
SELECT token, uses_allowed, pending, completed, expiry_time, revoked
FROM registration_tokens WHERE token = @token;

-- name: DeviceListByUser :many
SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices
WHERE user_id = @user_id ORDER BY device_id;

-- name: DeviceGet :one
SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices
WHERE user_id = @user_id AND device_id = @device_id;

-- name: RegistrationTokenList :many
SELECT token, uses_allowed, pending, completed, expiry_time, revoked
FROM registration_tokens WHERE NOT revoked ORDER BY token;

-- name: AccountGet :one
SELECT user_id, is_guest, is_admin, deactivated FROM accounts WHERE user_id = @user_id;
