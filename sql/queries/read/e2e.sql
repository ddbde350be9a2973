-- name: E2EDeviceKeysOf :many
-- The device keys of @user_ids' devices (all of a user's when their @device_ids entry
-- is empty), with the device's display name and the signatures uploaded apart.
SELECT k.user_id, k.device_id, k.keys::text AS keys, d.display_name,
       coalesce((SELECT json_agg(json_build_array(s.signer, s.signer_key_id, s.signature) ORDER BY s.signer, s.signer_key_id)
                 FROM e2e_key_signatures s WHERE s.user_id = k.user_id AND s.key_id = k.device_id), '[]')::text AS signatures
FROM e2e_device_keys k LEFT JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id
WHERE k.user_id = ANY(@user_ids::text[])
ORDER BY k.user_id, k.device_id;

-- name: E2ECrossSigningKeysOf :many
-- The cross-signing keys of @user_ids, with the signatures uploaded apart.
SELECT k.user_id, k.kind, k.key::text AS key,
       coalesce((SELECT json_agg(json_build_array(s.signer, s.signer_key_id, s.signature) ORDER BY s.signer, s.signer_key_id)
                 FROM e2e_key_signatures s WHERE s.user_id = k.user_id
                   AND ('ed25519:' || s.key_id) IN (SELECT json_object_keys(k.key -> 'keys'))), '[]')::text AS signatures
FROM e2e_cross_signing_keys k
WHERE k.user_id = ANY(@user_ids::text[])
ORDER BY k.user_id, k.kind;

-- name: E2EKeyCounts :one
-- A device's unclaimed one-time keys by algorithm and its unused fallback key algorithms.
SELECT coalesce((SELECT json_object_agg(c.algorithm, c.n) FROM e2e_one_time_key_counts c
                 WHERE c.user_id = @user_id::text AND c.device_id = @device_id::text AND c.n > 0), '{}')::text AS one_time,
       coalesce((SELECT json_agg(f.algorithm ORDER BY f.algorithm) FROM e2e_fallback_keys f
                 WHERE f.user_id = @user_id::text AND f.device_id = @device_id::text AND NOT f.used), '[]')::text AS fallback;

-- name: DeviceListChangedUsers :many
-- Users whose device list changed after @since up to @at, that @viewer should hear of:
-- themselves, users sharing one of @room_ids (the viewer's rooms), and changes meant
-- for the viewer alone.
SELECT DISTINCT c.user_id FROM device_list_changes c
WHERE c.stream_ordering > @since AND c.stream_ordering <= @at
  AND (c.only_for = @viewer::text OR c.only_for IS NULL AND (c.user_id = @viewer::text OR EXISTS (
       SELECT 1 FROM room_state s WHERE s.type = 'm.room.member' AND s.state_key = c.user_id AND s.to_ordering IS NULL
          AND s.membership = 'join' AND s.room_id = ANY(@room_ids::text[]))));

-- name: MembershipChangesIn :many
-- Member events of @room_ids after @since up to @at: who joined or left which room.
SELECT DISTINCT room_id, state_key, coalesce(membership, '')::text AS membership FROM room_state
WHERE type = 'm.room.member' AND room_id = ANY(@room_ids::text[]) AND from_ordering > @since AND from_ordering <= @at;
