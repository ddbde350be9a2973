-- name: SSOLoginGet :one
SELECT state_hash, idp, redirect_url, uia_session, user_id, browser_hash, expires_at, finished
FROM writemodel.sso_logins WHERE state_hash = @state_hash;

-- name: SSOLoginInsert :exec
INSERT INTO writemodel.sso_logins (state_hash, idp, redirect_url, uia_session, user_id, browser_hash, expires_at)
VALUES (@state_hash, @idp, @redirect_url, @uia_session, @user_id, @browser_hash, @expires_at)
ON CONFLICT DO NOTHING;

-- name: SSOLoginFinish :exec
UPDATE writemodel.sso_logins SET finished = true WHERE state_hash = @state_hash;

-- name: SSOLoginDeleteExpired :exec
-- Forgets logins that expired before @before (a time taken from an event, so a rebuild
-- forgets the same ones).
DELETE FROM writemodel.sso_logins WHERE expires_at < @before;

-- name: SSOIdentityGet :one
SELECT user_id FROM writemodel.sso_identities WHERE idp = @idp AND subject = @subject;

-- name: SSOIdentityInsert :exec
INSERT INTO writemodel.sso_identities (idp, subject, user_id) VALUES (@idp, @subject, @user_id)
ON CONFLICT DO NOTHING;

-- name: SSOIdentityListByUser :many
SELECT idp FROM writemodel.sso_identities WHERE user_id = @user_id ORDER BY idp;

-- name: UIASessionFinish :exec
UPDATE writemodel.uia_sessions SET done = true WHERE session = @session;
