-- +goose Up
-- Writer: package projections. One row per projector (its Watermill consumer group).
-- Unqualified on purpose: `spelt replay --into SCHEMA` builds read models and their
-- checkpoints in another schema through search_path.
CREATE TABLE projection_checkpoints (
    name text PRIMARY KEY,
    version integer NOT NULL,
    transaction_id xid8 NOT NULL DEFAULT '0',
    "offset" bigint NOT NULL DEFAULT 0,
    events bigint NOT NULL DEFAULT 0
);

-- Writer: package projections. Events a projector could not apply after retries; the
-- projector skips them (deterministically, so replay skips them too) and an operator
-- reads them here.
CREATE TABLE projection_failures (
    name text NOT NULL,
    transaction_id xid8 NOT NULL,
    "offset" bigint NOT NULL,
    event_type text NOT NULL,
    error text NOT NULL,
    PRIMARY KEY (name, transaction_id, "offset")
);

-- +goose Down
SELECT 1;
