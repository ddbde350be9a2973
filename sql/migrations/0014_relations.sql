-- +goose Up
-- Thread listing (GET /rooms/{roomId}/threads) groups a room's m.thread events by root
-- and orders the roots by their latest reply: this index answers it without reading
-- the events themselves (sender for include=participated).
CREATE INDEX room_events_threads ON room_events (room_id, relates_to, stream_ordering) INCLUDE (sender)
    WHERE rel_type = 'm.thread';

-- +goose Down
SELECT 1;
