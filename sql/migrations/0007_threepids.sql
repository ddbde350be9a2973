-- +goose Up
-- Third-party identifiers (3PIDs: e-mail addresses, phone numbers) of accounts.

-- Write model (package commands): validation sessions started by a requestToken call.
-- The client secret and the token mailed to the user are stored only as SHA-256 hashes;
-- the address is the user's own data and is stored as it is (canonical form).
CREATE TABLE writemodel.threepid_sessions (
    sid text PRIMARY KEY,
    client_secret_hash bytea NOT NULL,
    medium text NOT NULL,
    address text NOT NULL,
    -- What the session was requested for: register, add or password_reset.
    purpose text NOT NULL,
    token_hash bytea NOT NULL,
    send_attempt bigint NOT NULL,
    next_link text,
    -- When the token last mailed stops working.
    expires_at timestamptz NOT NULL,
    validated_at timestamptz,
    -- The user-interactive authentication session whose m.login.email.identity stage
    -- used this session; a session is used for one such stage at most.
    used_by_uia text
);
CREATE INDEX threepid_sessions_pending ON writemodel.threepid_sessions (client_secret_hash, medium, address, purpose)
    WHERE validated_at IS NULL;
CREATE INDEX threepid_sessions_uia ON writemodel.threepid_sessions (used_by_uia) WHERE used_by_uia IS NOT NULL;

-- Write model (package commands): the 3PIDs added to accounts. A 3PID belongs to one
-- account at most.
CREATE TABLE writemodel.user_threepids (
    medium text NOT NULL,
    address text NOT NULL,
    user_id text NOT NULL,
    validated_at timestamptz NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user ON writemodel.user_threepids (user_id);

-- Read model. Writer: package projections (projector "threepids"). GET /account/3pid.
CREATE TABLE user_threepids (
    medium text NOT NULL,
    address text NOT NULL,
    user_id text NOT NULL,
    validated_at timestamptz NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (medium, address)
);
CREATE INDEX user_threepids_user ON user_threepids (user_id);

-- +goose Down
SELECT 1;
