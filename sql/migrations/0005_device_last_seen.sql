-- +goose Up
-- Writer: package projections (projector "accounts"). Last use of a device, from the
-- periodic account.devices_seen events.
ALTER TABLE devices ADD COLUMN last_seen_ip text;
ALTER TABLE devices ADD COLUMN last_seen_ts timestamptz;

-- +goose Down
SELECT 1;
