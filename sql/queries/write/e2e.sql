-- name: E2EDeviceKeysGet :one
SELECT keys FROM writemodel.e2e_device_keys WHERE user_id = @user_id AND device_id = @device_id;

-- name: E2EDeviceKeysPut :exec
INSERT INTO writemodel.e2e_device_keys (user_id, device_id, keys) VALUES (@user_id, @device_id, @keys)
ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys;

-- name: E2EOneTimeKeysExisting :many
-- Of @key_ids ("algorithm:id"), those the device has unclaimed, with their keys.
SELECT (algorithm || ':' || key_id)::text AS full_id, key FROM writemodel.e2e_one_time_keys
WHERE user_id = @user_id AND device_id = @device_id AND algorithm || ':' || key_id = ANY(@key_ids::text[]);

-- name: E2EOneTimeKeyInsert :exec
INSERT INTO writemodel.e2e_one_time_keys (user_id, device_id, algorithm, key_id, key)
VALUES (@user_id, @device_id, @algorithm, @key_id, @key) ON CONFLICT DO NOTHING;

-- name: E2EOneTimeKeyDelete :exec
DELETE FROM writemodel.e2e_one_time_keys
WHERE user_id = @user_id AND device_id = @device_id AND algorithm = @algorithm AND key_id = @key_id;

-- name: E2EOneTimeKeyClaim :one
-- The device's first unclaimed key of an algorithm. Claims running at once skip each
-- other's keys, so no key is handed out twice.
SELECT key_id, key FROM writemodel.e2e_one_time_keys
WHERE user_id = @user_id AND device_id = @device_id AND algorithm = @algorithm
ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED;

-- name: E2EFallbackKeyGet :one
SELECT key_id, key FROM writemodel.e2e_fallback_keys
WHERE user_id = @user_id AND device_id = @device_id AND algorithm = @algorithm;

-- name: E2EFallbackKeyPut :exec
INSERT INTO writemodel.e2e_fallback_keys (user_id, device_id, algorithm, key_id, key) VALUES (@user_id, @device_id, @algorithm, @key_id, @key)
ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key = excluded.key, used = false;

-- name: E2EFallbackKeyUse :exec
UPDATE writemodel.e2e_fallback_keys SET used = true
WHERE user_id = @user_id AND device_id = @device_id AND algorithm = @algorithm AND key_id = @key_id;

-- name: E2EDeleteDevice :exec
WITH d AS (DELETE FROM writemodel.e2e_device_keys WHERE user_id = @user_id::text AND device_id = @device_id::text),
     o AS (DELETE FROM writemodel.e2e_one_time_keys WHERE user_id = @user_id::text AND device_id = @device_id::text)
DELETE FROM writemodel.e2e_fallback_keys WHERE user_id = @user_id::text AND device_id = @device_id::text;

-- name: E2EDeleteUserDevices :exec
-- Every device's keys; the cross-signing keys stay (they belong to the user).
WITH d AS (DELETE FROM writemodel.e2e_device_keys WHERE user_id = @user_id::text),
     o AS (DELETE FROM writemodel.e2e_one_time_keys WHERE user_id = @user_id::text)
DELETE FROM writemodel.e2e_fallback_keys WHERE user_id = @user_id::text;

-- name: E2ECrossSigningKeys :many
SELECT kind, key FROM writemodel.e2e_cross_signing_keys WHERE user_id = @user_id;

-- name: E2ECrossSigningKeyPut :exec
INSERT INTO writemodel.e2e_cross_signing_keys (user_id, kind, key) VALUES (@user_id, @kind, @key)
ON CONFLICT (user_id, kind) DO UPDATE SET key = excluded.key;

-- name: E2ECrossSigningKeysDelete :exec
DELETE FROM writemodel.e2e_cross_signing_keys WHERE user_id = @user_id;
