package queries

import (
	"context"
	"fmt"
	"time"
)

// Report is a report users filed about a room or an event.
type Report struct {
	ID         int64
	RoomID     string
	EventID    string
	Reporter   string
	Reason     string
	Score      *int32
	ReportedAt time.Time
}

// Reports lists the latest reports, newest first.
func (q *Queries) Reports(ctx context.Context, limit int) ([]Report, error) {
	rows, err := q.q.EventReportList(ctx, q.pool, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	out := make([]Report, len(rows))
	for i, r := range rows {
		out[i] = Report{ID: r.ReportID, RoomID: r.RoomID, EventID: deref(r.EventID), Reporter: r.Reporter,
			Reason: deref(r.Reason), Score: r.Score, ReportedAt: r.ReportedAt}
	}
	return out, nil
}
