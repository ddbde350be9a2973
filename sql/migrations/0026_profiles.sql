-- +goose Up
-- Write model (writer: package commands): profiles, which member events carry.
CREATE TABLE writemodel.profiles (
    user_id text PRIMARY KEY,
    displayname text,
    avatar_url text
);
-- Read model (projector "profiles").
CREATE TABLE profiles (
    user_id text PRIMARY KEY,
    displayname text,
    avatar_url text
);

-- +goose Down
SELECT 1;
