// Package commands is Spelt's write side: one handler per command. A handler checks who
// is asking and what the write model allows, decides, and appends events to the log; the
// write model (schema writemodel) is updated from those events in the same transaction.
//
// It imports eventlog and the generated write-model SQL (sql/gen/writedb) only; it never
// reads read models.
package commands
