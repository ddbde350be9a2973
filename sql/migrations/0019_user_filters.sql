-- +goose Up
-- Read model (projector "filters"): the filters users uploaded.
CREATE TABLE user_filters (
    user_id text NOT NULL,
    filter_id text NOT NULL,
    filter json NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

-- +goose Down
SELECT 1;
