-- name: DeviceInboxPosition :one
SELECT coalesce((SELECT stream_ordering FROM device_inbox_position), 0)::bigint;

-- name: DeviceInboxSetPosition :exec
INSERT INTO device_inbox_position (id, stream_ordering) VALUES (true, @stream_ordering)
ON CONFLICT (id) DO UPDATE SET stream_ordering = excluded.stream_ordering;

-- name: DeviceInboxInsert :exec
INSERT INTO device_inbox (user_id, device_id, stream_ordering, sender, type, content)
VALUES (@user_id, @device_id, @stream_ordering, @sender, @type, @content);

-- name: DeviceInboxAcknowledge :exec
DELETE FROM device_inbox WHERE user_id = @user_id AND device_id = @device_id AND stream_ordering <= @up_to;

-- name: DeviceInboxDeleteDevice :exec
DELETE FROM device_inbox WHERE user_id = @user_id AND device_id = @device_id;

-- name: DeviceInboxDeleteUser :exec
DELETE FROM device_inbox WHERE user_id = @user_id;
