-- name: UserThreepidListByUser :many
SELECT medium, address, validated_at, added_at FROM user_threepids
WHERE user_id = @user_id ORDER BY medium, address;
