-- name: PresenceGet :one
SELECT presence, status_msg, updated_at FROM user_presence WHERE user_id = @user_id;

-- name: UsersShareARoom :one
-- Whether two users are both joined to some room now.
SELECT EXISTS (
    SELECT 1 FROM room_state a JOIN room_state b ON b.room_id = a.room_id
    WHERE a.type = 'm.room.member' AND a.state_key = @user_a AND a.to_ordering IS NULL AND a.membership = 'join'
      AND b.type = 'm.room.member' AND b.state_key = @user_b AND b.to_ordering IS NULL AND b.membership = 'join'
);

-- name: AccountExists :one
SELECT EXISTS (SELECT 1 FROM accounts WHERE user_id = @user_id AND NOT deactivated);
