-- name: UserFilterGet :one
SELECT filter::text FROM user_filters WHERE user_id = @user_id AND filter_id = @filter_id;
