-- +goose Up
-- Write model (writer: package commands): the 3PIDs bound at identity servers, to
-- unbind them later.
CREATE TABLE writemodel.threepid_bindings (
    user_id text NOT NULL,
    medium text NOT NULL,
    address text NOT NULL,
    id_server text NOT NULL,
    PRIMARY KEY (user_id, medium, address, id_server)
);

-- +goose Down
SELECT 1;
