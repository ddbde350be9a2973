-- +goose Up
-- A user-interactive authentication session for an operation on an account (password
-- change, deactivation, device deletion) belongs to that user: another user's request
-- cannot complete or use it. NULL for registration sessions.
ALTER TABLE writemodel.uia_sessions ADD COLUMN user_id text;

-- +goose Down
SELECT 1;
