-- +goose Up
-- The room directory (GET/POST /publicRooms) starts from the published rooms, a few
-- among many: a partial index finds them without reading every room. Table "rooms" is
-- written by package projections (projector "rooms"); rebuilds clone its indexes.
CREATE INDEX rooms_published ON rooms (room_id) WHERE published;

-- +goose Down
DROP INDEX rooms_published;
