-- +goose Up
-- Write model (package commands): whether a room is in the room directory, so that an
-- upgrade moves the listing to the new room.
ALTER TABLE writemodel.rooms ADD COLUMN published boolean NOT NULL DEFAULT false;

-- +goose Down
SELECT 1;
