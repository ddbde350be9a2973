package queries

import (
	"context"
	"encoding/json"

	"spelt.dev/spelt/sql/gen/readdb"
)

// aggregations returns, per event ID of rows, the unsigned m.relations the viewer gets
// (spec: client-server API, "Server-side aggregation of m.relations"); events without
// any are absent.
func (q *Queries) aggregations(ctx context.Context, db readdb.DBTX, v Viewer, rows []*eventRow) (map[string]json.RawMessage, error) {
	return nil, nil
}
