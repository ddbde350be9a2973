-- name: RegistrationTokenGet :one
SELECT token, uses_allowed, pending, completed, expiry_time, revoked
FROM writemodel.registration_tokens WHERE token = @token;

-- name: RegistrationTokenInsert :exec
INSERT INTO writemodel.registration_tokens (token, uses_allowed, expiry_time)
VALUES (@token, @uses_allowed, @expiry_time);

-- name: RegistrationTokenComplete :exec
UPDATE writemodel.registration_tokens SET completed = completed + 1 WHERE token = @token;

-- name: RegistrationTokenRevoke :exec
UPDATE writemodel.registration_tokens SET revoked = true WHERE token = @token;

-- name: RegistrationTokenUpdate :exec
UPDATE writemodel.registration_tokens SET uses_allowed = @uses_allowed, expiry_time = @expiry_time
WHERE token = @token;
