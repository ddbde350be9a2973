-- name: DeviceListChangesMaxOrdering :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM device_list_changes;

-- name: DeviceListChangeInsert :exec
INSERT INTO device_list_changes (stream_ordering, user_id, only_for) VALUES (@stream_ordering, @user_id, sqlc.narg(only_for));

-- name: E2EDeviceKeysUpsert :exec
INSERT INTO e2e_device_keys (user_id, device_id, keys) VALUES (@user_id, @device_id, @keys)
ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys;

-- name: E2EOneTimeKeyCountAdd :exec
INSERT INTO e2e_one_time_key_counts (user_id, device_id, algorithm, n) VALUES (@user_id, @device_id, @algorithm, @n)
ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET n = e2e_one_time_key_counts.n + excluded.n;

-- name: E2EFallbackKeyUpsert :exec
INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, used) VALUES (@user_id, @device_id, @algorithm, @used)
ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET used = excluded.used;

-- name: E2ECrossSigningKeyUpsert :exec
INSERT INTO e2e_cross_signing_keys (user_id, kind, key) VALUES (@user_id, @kind, @key)
ON CONFLICT (user_id, kind) DO UPDATE SET key = excluded.key;

-- name: E2EKeySignatureUpsert :exec
INSERT INTO e2e_key_signatures (user_id, key_id, signer, signer_key_id, signature)
VALUES (@user_id, @key_id, @signer, @signer_key_id, @signature)
ON CONFLICT (user_id, key_id, signer, signer_key_id) DO UPDATE SET signature = excluded.signature;

-- name: E2EDeleteDeviceKeys :exec
WITH d AS (DELETE FROM e2e_device_keys WHERE user_id = @user_id::text AND device_id = @device_id::text),
     c AS (DELETE FROM e2e_one_time_key_counts WHERE user_id = @user_id::text AND device_id = @device_id::text),
     s AS (DELETE FROM e2e_key_signatures WHERE user_id = @user_id::text AND key_id = @device_id::text)
DELETE FROM e2e_fallback_keys WHERE user_id = @user_id::text AND device_id = @device_id::text;

-- name: E2EDeleteUserDeviceKeys :exec
-- Every device's keys and the signatures of them.
WITH d AS (DELETE FROM e2e_device_keys WHERE user_id = @user_id::text),
     c AS (DELETE FROM e2e_one_time_key_counts WHERE user_id = @user_id::text),
     s AS (DELETE FROM e2e_key_signatures WHERE user_id = @user_id::text
           AND key_id IN (SELECT x.device_id FROM e2e_device_keys x WHERE x.user_id = @user_id))
DELETE FROM e2e_fallback_keys WHERE user_id = @user_id::text;

-- name: E2EDeleteCrossSigningKeys :exec
WITH s AS (DELETE FROM e2e_key_signatures WHERE user_id = @user_id::text)
DELETE FROM e2e_cross_signing_keys WHERE user_id = @user_id::text;
