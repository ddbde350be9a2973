-- +goose Up
-- Read models of /sync: each change of account data (tags included, as room account
-- data m.tag) and of presence gets the next number of its stream, in log order, so that
-- a sync token can say "after change N" and mean the same after a replay.
ALTER TABLE account_data ADD COLUMN stream_ordering bigint NOT NULL DEFAULT 0;
CREATE INDEX account_data_user_ordering ON account_data (user_id, stream_ordering);
ALTER TABLE user_presence ADD COLUMN stream_ordering bigint NOT NULL DEFAULT 0;
CREATE INDEX user_presence_ordering ON user_presence (stream_ordering);

-- +goose Down
SELECT 1;
