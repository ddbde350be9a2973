-- +goose Up
-- Write model (writer: package commands): what uploads, claims and signatures check.
CREATE TABLE writemodel.e2e_device_keys (
    user_id text NOT NULL,
    device_id text NOT NULL,
    keys jsonb NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
-- One-time keys not claimed yet; a claim takes the lowest key ID of an algorithm.
CREATE TABLE writemodel.e2e_one_time_keys (
    user_id text NOT NULL,
    device_id text NOT NULL,
    algorithm text NOT NULL,
    key_id text NOT NULL,
    key jsonb NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE TABLE writemodel.e2e_fallback_keys (
    user_id text NOT NULL,
    device_id text NOT NULL,
    algorithm text NOT NULL,
    key_id text NOT NULL,
    key jsonb NOT NULL,
    used boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, device_id, algorithm)
);
-- kind: master, self_signing or user_signing.
CREATE TABLE writemodel.e2e_cross_signing_keys (
    user_id text NOT NULL,
    kind text NOT NULL,
    key jsonb NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Read models. Writer: package projections (projector "e2e_keys").
CREATE TABLE e2e_device_keys (
    user_id text NOT NULL,
    device_id text NOT NULL,
    keys json NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
CREATE TABLE e2e_cross_signing_keys (
    user_id text NOT NULL,
    kind text NOT NULL,
    key json NOT NULL,
    PRIMARY KEY (user_id, kind)
);
-- Signatures uploaded apart from the keys they sign (key_id: a device ID or a
-- cross-signing public key).
CREATE TABLE e2e_key_signatures (
    user_id text NOT NULL,
    key_id text NOT NULL,
    signer text NOT NULL,
    signer_key_id text NOT NULL,
    signature text NOT NULL,
    PRIMARY KEY (user_id, key_id, signer, signer_key_id)
);
CREATE TABLE e2e_one_time_key_counts (
    user_id text NOT NULL,
    device_id text NOT NULL,
    algorithm text NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm)
);
CREATE TABLE e2e_fallback_keys (
    user_id text NOT NULL,
    device_id text NOT NULL,
    algorithm text NOT NULL,
    used boolean NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm)
);
-- Whose device list changed, numbered in log order for sync tokens; only_for: a change
-- only that user is told of (a signature by their user-signing key).
CREATE TABLE device_list_changes (
    stream_ordering bigint PRIMARY KEY,
    user_id text NOT NULL,
    only_for text
);

-- +goose Down
SELECT 1;
