-- name: CheckpointEnsure :exec
INSERT INTO projection_checkpoints (name, version) VALUES (@name, @version)
ON CONFLICT (name) DO NOTHING;

-- name: CheckpointGet :one
SELECT name, version, transaction_id, "offset", events FROM projection_checkpoints
WHERE name = @name;

-- name: CheckpointAdvance :execrows
-- Moves the checkpoint forward; no row changes when the position was already applied,
-- which is how a redelivered event is recognised and skipped.
UPDATE projection_checkpoints
SET transaction_id = @transaction_id, "offset" = @offset_, events = events + @n
WHERE name = @name AND (transaction_id, "offset") < (@transaction_id::xid8, @offset_::bigint);

-- name: CheckpointReset :exec
UPDATE projection_checkpoints
SET version = @version, transaction_id = '0', "offset" = 0, events = 0
WHERE name = @name;

-- name: CheckpointList :many
SELECT name, version, transaction_id, "offset", events FROM projection_checkpoints ORDER BY name;

-- name: FailureRecord :exec
INSERT INTO projection_failures (name, transaction_id, "offset", event_type, error)
VALUES (@name, @transaction_id, @offset_, @event_type, @error)
ON CONFLICT DO NOTHING;

-- name: CheckpointUncount :exec
-- Takes back the count of an event that was skipped instead of applied, so that the
-- count is the same whichever path (live or batch) met it.
UPDATE projection_checkpoints SET events = events - 1 WHERE name = @name;
