package store

import (
	"time"

	"kohaku/pkg/normalize"
)

// TimeWindow is the span of the times of the rows added to it, zero while it has none:
// after a replay or an import, the period whose continuous aggregates must be refreshed,
// since they skip rows written behind their refresh window.
type TimeWindow struct{ From, To time.Time }

// Add widens w to the times of rows; the time is the first column of every stats table.
func (w *TimeWindow) Add(rows *normalize.Rows) {
	if rows == nil {
		return
	}
	for _, table := range rows.Tables {
		for _, row := range table {
			t, ok := row[0].(time.Time)
			if !ok {
				continue
			}
			if w.From.IsZero() || t.Before(w.From) {
				w.From = t
			}
			if t.After(w.To) {
				w.To = t
			}
		}
	}
}
