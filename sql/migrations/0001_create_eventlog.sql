-- +goose Up
-- Writer: package eventlog, and only through Append (INSERT). Nothing ever updates or
-- deletes a row: the triggers below make the database itself refuse it.
CREATE SCHEMA eventlog;

-- events is the append-only log. Its order is (transaction_id, "offset"): a reader only
-- takes rows whose transaction_id is below the oldest running transaction
-- (pg_snapshot_xmin), so a row that commits late with a lower offset is never skipped.
-- The primary key serves that row-comparison scan.
CREATE TABLE eventlog.events (
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    "offset" bigserial NOT NULL,
    uuid uuid NOT NULL,
    stream text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version > 0),
    type text NOT NULL,
    -- json (not jsonb) keeps the bytes the hash covers exactly as written.
    payload json NOT NULL,
    metadata json NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- hash = SHA-256 over prev_hash and the row's content; prev_hash is the hash of the
    -- previous version of the same stream (NULL for version 1).
    prev_hash bytea,
    hash bytea NOT NULL,
    PRIMARY KEY (transaction_id, "offset"),
    UNIQUE (stream, stream_version)
);

-- seals are signed checkpoints over the global order: seal n covers every event after
-- seal n-1 up to (upto_transaction_id, upto_offset), chained through prev_digest.
CREATE TABLE eventlog.seals (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    upto_transaction_id xid8 NOT NULL,
    upto_offset bigint NOT NULL,
    event_count bigint NOT NULL,
    prev_digest bytea,
    digest bytea NOT NULL,
    sealed_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION eventlog.reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventlog.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON eventlog.events
    FOR EACH ROW EXECUTE FUNCTION eventlog.reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventlog.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventlog.reject_change();
CREATE TRIGGER seals_append_only BEFORE UPDATE OR DELETE ON eventlog.seals
    FOR EACH ROW EXECUTE FUNCTION eventlog.reject_change();
CREATE TRIGGER seals_no_truncate BEFORE TRUNCATE ON eventlog.seals
    FOR EACH STATEMENT EXECUTE FUNCTION eventlog.reject_change();

-- +goose Down
-- Forward-only: the log is never dropped by a migration.
SELECT 1;
