// Package projections builds Spelt's read models from the event log: one projector per
// read model, each a Watermill subscriber (its name is its consumer group) that writes its
// rows and its checkpoint in one transaction. The Runner catches projectors up in
// batches, hands them over to live delivery, and tells waiters (read-your-writes) when a
// position is projected.
//
// It imports eventlog and the generated read-model SQL (sql/gen/projdb) only.
package projections
