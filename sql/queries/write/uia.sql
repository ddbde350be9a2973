-- name: UIASessionGet :one
SELECT session, kind, user_id, operation, completed, created_at, done FROM writemodel.uia_sessions WHERE session = @session;

-- name: UIASessionInsert :exec
INSERT INTO writemodel.uia_sessions (session, kind, user_id, operation, created_at) VALUES (@session, @kind, @user_id, @operation, @created_at);

-- name: UIASessionCompleteStage :exec
UPDATE writemodel.uia_sessions SET completed = array_append(completed, @stage::text)
WHERE session = @session AND NOT (@stage::text = ANY (completed));
