-- +goose Up
-- Single sign-on with OpenID Connect (spec: client-server API, "SSO client
-- login/authentication").

-- Write model (package commands): in-flight SSO logins, by the SHA-256 of their OAuth 2.0
-- state, so that a callback can be finished by any process, after a restart, once.
CREATE TABLE writemodel.sso_logins (
    state_hash bytea PRIMARY KEY,
    idp text NOT NULL,
    -- The client's redirectUrl (login) or the user-interactive authentication session
    -- and its user (m.login.sso stage).
    redirect_url text,
    uia_session text,
    user_id text,
    -- SHA-256 of the cookie that binds the login to the browser that started it.
    browser_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    finished boolean NOT NULL DEFAULT false
);
CREATE INDEX sso_logins_expires ON writemodel.sso_logins (expires_at);

-- Write model (package commands): identities at identity providers and the accounts
-- they log in as.
CREATE TABLE writemodel.sso_identities (
    idp text NOT NULL,
    subject text NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (idp, subject)
);
CREATE INDEX sso_identities_user ON writemodel.sso_identities (user_id);

-- Write model (package commands): a user-interactive authentication session that has
-- authorised its operation cannot authorise another.
ALTER TABLE writemodel.uia_sessions ADD COLUMN done boolean NOT NULL DEFAULT false;

-- +goose Down
SELECT 1;
