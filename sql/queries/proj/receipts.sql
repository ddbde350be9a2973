-- name: ReceiptsMaxOrdering :one
SELECT coalesce(max(stream_ordering), 0)::bigint FROM receipts;

-- name: ReceiptUpsert :exec
INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, stream_ordering)
VALUES (@room_id, @user_id, @receipt_type, @thread_id, @event_id, @ts, @stream_ordering)
ON CONFLICT (room_id, user_id, receipt_type, thread_id) DO UPDATE
SET event_id = excluded.event_id, ts = excluded.ts, stream_ordering = excluded.stream_ordering;
