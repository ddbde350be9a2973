-- name: RegistrationTokenCreate :exec
INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time, revoked)
VALUES (@token, @uses_allowed, 0, 0, @expiry_time, false)
ON CONFLICT (token) DO NOTHING;

-- name: RegistrationTokenCompleted :exec
UPDATE registration_tokens SET completed = completed + 1 WHERE token = @token;

-- name: RegistrationTokenRevoked :exec
UPDATE registration_tokens SET revoked = true WHERE token = @token;

-- name: RegistrationTokenUpdated :exec
UPDATE registration_tokens SET uses_allowed = @uses_allowed, expiry_time = @expiry_time
WHERE token = @token;
