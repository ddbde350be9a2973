-- +goose Up
-- Write model (package commands): what a user-interactive authentication session
-- authorises (e.g. the devices to delete); continuing it for anything else is refused.
ALTER TABLE writemodel.uia_sessions ADD COLUMN operation text NOT NULL DEFAULT '';

-- +goose Down
SELECT 1;
