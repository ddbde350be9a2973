-- name: PresenceGet :one
-- A user's presence, and when one of their devices was last seen (sampled: see
-- account.devices_seen).
SELECT p.presence, p.status_msg, p.updated_at,
       greatest(p.updated_at, coalesce((SELECT max(d.last_seen_ts) FROM devices d WHERE d.user_id = p.user_id), p.updated_at))::timestamptz AS last_active
FROM user_presence p WHERE p.user_id = @user_id;

-- name: UsersShareARoom :one
-- Whether two users are both joined to some room now.
SELECT EXISTS (
    SELECT 1 FROM room_state a JOIN room_state b ON b.room_id = a.room_id
    WHERE a.type = 'm.room.member' AND a.state_key = @user_a AND a.to_ordering IS NULL AND a.membership = 'join'
      AND b.type = 'm.room.member' AND b.state_key = @user_b AND b.to_ordering IS NULL AND b.membership = 'join'
);

-- name: AccountExists :one
SELECT EXISTS (SELECT 1 FROM accounts WHERE user_id = @user_id AND NOT deactivated);
