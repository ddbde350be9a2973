-- name: UserThreepidUpsert :exec
INSERT INTO user_threepids (medium, address, user_id, validated_at, added_at)
VALUES (@medium, @address, @user_id, @validated_at, @added_at)
ON CONFLICT (medium, address) DO UPDATE SET
    user_id = excluded.user_id, validated_at = excluded.validated_at, added_at = excluded.added_at;

-- name: UserThreepidRemove :exec
DELETE FROM user_threepids WHERE medium = @medium AND address = @address AND user_id = @user_id;

-- name: UserThreepidRemoveByUser :exec
DELETE FROM user_threepids WHERE user_id = @user_id;
