-- +goose Up
CREATE SCHEMA writemodel;

-- Write model: the state commands decide on, updated in the same transaction as the
-- append that changes it. Writer: package commands (WriteModel.Apply), which derives every
-- row from events, so `spelt replay` rebuilds these tables from the log.
CREATE TABLE writemodel.users (
    user_id text PRIMARY KEY,
    localpart text NOT NULL UNIQUE,
    password_hash text,
    is_guest boolean NOT NULL DEFAULT false,
    is_admin boolean NOT NULL DEFAULT false,
    deactivated boolean NOT NULL DEFAULT false
);

CREATE TABLE writemodel.devices (
    user_id text NOT NULL,
    device_id text NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE writemodel.uia_sessions (
    session text PRIMARY KEY,
    kind text NOT NULL,
    completed text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);

CREATE TABLE writemodel.registration_tokens (
    token text PRIMARY KEY,
    uses_allowed integer,
    pending integer NOT NULL DEFAULT 0,
    completed integer NOT NULL DEFAULT 0,
    expiry_time timestamptz,
    revoked boolean NOT NULL DEFAULT false
);

-- Read models. Writer: package projections (projector "accounts").
CREATE TABLE accounts (
    user_id text PRIMARY KEY,
    localpart text NOT NULL UNIQUE,
    is_guest boolean NOT NULL,
    is_admin boolean NOT NULL,
    deactivated boolean NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE devices (
    user_id text NOT NULL,
    device_id text NOT NULL,
    display_name text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Only the SHA-256 of a token is stored, never the token.
CREATE TABLE access_tokens (
    token_hash bytea PRIMARY KEY,
    user_id text NOT NULL,
    device_id text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

-- Writer: package projections (projector "registration_tokens").
CREATE TABLE registration_tokens (
    token text PRIMARY KEY,
    uses_allowed integer,
    pending integer NOT NULL,
    completed integer NOT NULL,
    expiry_time timestamptz,
    revoked boolean NOT NULL
);

-- +goose Down
SELECT 1;
