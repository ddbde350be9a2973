-- +goose Up
-- Read model (projector "rooms"): each room event as its PDU (redacted once redacted),
-- for filters with event_format "federation".
CREATE TABLE room_event_pdus (
    event_id text PRIMARY KEY,
    pdu json NOT NULL
);

-- +goose Down
SELECT 1;
