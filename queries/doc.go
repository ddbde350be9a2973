// Package queries is Spelt's read side: it answers requests from read models only
// (sql/gen/readdb), never from the log or the write model.
package queries
