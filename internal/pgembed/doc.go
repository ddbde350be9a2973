// Package pgembed runs a private PostgreSQL cluster from the system's server
// binaries (initdb, pg_ctl, postgres), for the single-binary default of
// `spelt serve` when no database URL is configured, and for tests through
// internal/testkit.
//
// The cluster listens only on a Unix socket in a 0700 directory, so it is
// reachable only by the user that owns it (and root); it trusts every local
// connection as the superuser "spelt" and has no password. A lock file beside
// the cluster directory (DataDir + ".lock") guarantees that one process owns a
// cluster at a time; a server left running by an owner that died is stopped
// and restarted by the next Start.
//
// PostgreSQL refuses to run as root: when the process is root, the server runs
// as the "postgres" system user, which owns the cluster directory.
//
// The package works on Unix systems only (it relies on flock and process
// credentials).
//
// Allowed imports: the standard library and github.com/jackc/pgx/v5; no
// project package.
package pgembed
