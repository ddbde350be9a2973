-- +goose Up
-- Write model of rooms (package commands): what the auth rules and the DAG need to build
-- the next event of a room. Every row derives from room.event_accepted events.
CREATE TABLE writemodel.rooms (
    room_id text PRIMARY KEY,
    room_version text NOT NULL,
    -- Commands hold an advisory lock per room: its events are built one at a time, so local sends
    -- never fork the room.
    max_depth bigint NOT NULL
);

-- The events commands look up: every event's sender and type (redactions), and the full
-- PDU of state events (the auth rules read them).
CREATE TABLE writemodel.room_events (
    event_id text PRIMARY KEY,
    room_id text NOT NULL,
    sender text NOT NULL,
    type text NOT NULL,
    state_key text,
    depth bigint NOT NULL,
    pdu json
);

CREATE TABLE writemodel.room_state (
    room_id text NOT NULL,
    type text NOT NULL,
    state_key text NOT NULL,
    event_id text NOT NULL,
    membership text,
    PRIMARY KEY (room_id, type, state_key)
);

-- Forward extremities, with their PDUs (room versions 1 and 2 reference their hashes).
CREATE TABLE writemodel.room_extremities (
    room_id text NOT NULL,
    event_id text NOT NULL,
    depth bigint NOT NULL,
    pdu json NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Client transaction IDs: a retried request gets the event of its first attempt.
CREATE TABLE writemodel.room_txns (
    user_id text NOT NULL,
    device_id text NOT NULL,
    scope text NOT NULL,
    txn_id text NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id)
);

CREATE TABLE writemodel.room_aliases (
    alias text PRIMARY KEY,
    room_id text NOT NULL,
    creator text NOT NULL
);
CREATE INDEX room_aliases_room ON writemodel.room_aliases (room_id);

-- Read models. Writer: package projections (projector "rooms").
CREATE TABLE rooms (
    room_id text PRIMARY KEY,
    room_version text NOT NULL,
    creator text NOT NULL,
    room_type text,
    published boolean NOT NULL DEFAULT false
);

-- Every room event, in the order the server accepted them (stream_ordering, dense and
-- assigned by the projector in log order, so a replay gives the same numbers).
CREATE TABLE room_events (
    stream_ordering bigint PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    room_id text NOT NULL,
    type text NOT NULL,
    state_key text,
    sender text NOT NULL,
    origin_server_ts bigint NOT NULL,
    depth bigint NOT NULL,
    -- The event in the client format (without unsigned); redacted once redacted.
    event json NOT NULL,
    -- The state event this one replaced, for unsigned.prev_content.
    replaces_state text,
    redacted_because text,
    -- The history visibility in effect when the event was sent.
    visibility text NOT NULL,
    membership text,
    txn_id text,
    txn_device text,
    rel_type text,
    relates_to text
);
CREATE INDEX room_events_room ON room_events (room_id, stream_ordering);
CREATE INDEX room_events_relates ON room_events (relates_to, stream_ordering) WHERE relates_to IS NOT NULL;
CREATE INDEX room_events_ts ON room_events (room_id, origin_server_ts);

-- Room state through time: each row is one state event's span, from the event that set
-- it to the one that replaced it (NULL: still current). The state after the event at
-- ordering N is the spans with from_ordering <= N and (to_ordering IS NULL or > N).
CREATE TABLE room_state (
    room_id text NOT NULL,
    type text NOT NULL,
    state_key text NOT NULL,
    event_id text NOT NULL,
    from_ordering bigint NOT NULL,
    to_ordering bigint,
    membership text,
    PRIMARY KEY (room_id, type, state_key, from_ordering)
);
CREATE INDEX room_state_current ON room_state (room_id, type, state_key) WHERE to_ordering IS NULL;
CREATE INDEX room_state_members ON room_state (state_key, room_id, from_ordering) WHERE type = 'm.room.member';

CREATE TABLE room_aliases (
    alias text PRIMARY KEY,
    room_id text NOT NULL,
    creator text NOT NULL
);
CREATE INDEX room_aliases_room_read ON room_aliases (room_id);

CREATE TABLE rooms_forgotten (
    user_id text NOT NULL,
    room_id text NOT NULL,
    -- Forgetting covers the room's events up to here; a later join brings it back.
    up_to bigint NOT NULL,
    PRIMARY KEY (user_id, room_id)
);

CREATE TABLE event_reports (
    report_id bigint PRIMARY KEY,
    room_id text NOT NULL,
    event_id text,
    reporter text NOT NULL,
    reason text,
    score integer,
    reported_at timestamptz NOT NULL
);

-- +goose Down
SELECT 1;
