// Package eventlog is Spelt's append-only event log: appending events (through
// Watermill's SQL publisher on the caller's pgx transaction), reading them in global
// order, waking subscribers after commit, and the tamper evidence (a hash chain per
// stream and signed seals over the global order).
//
// It is the only vocabulary that the write side (commands) and the read side
// (projections) share: event type names and payloads are declared here.
//
// It imports nothing else of the project.
package eventlog
