package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"kohaku/pkg/normalize"
)

// TestTableBatchCopiesRowsInConnectionOrder pins the order in which a batch's rows are
// copied: by connection id, a connection's reports in batch order, messages without rows
// left out; each part still names its own message.
func TestTableBatchCopiesRowsInConnectionOrder(t *testing.T) {
	report := func(conn string, stats ...string) Message {
		r := &normalize.Rows{Tables: map[string][][]any{}, Origins: map[string][]normalize.Origin{}}
		if conn != "" {
			r.Connection = &normalize.Connection{ConnectionID: conn, Time: time.Unix(0, 0)}
		}
		for k, s := range stats {
			r.Tables["t"] = append(r.Tables["t"], []any{conn, s})
			r.Origins["t"] = append(r.Origins["t"], normalize.Origin{Index: k})
		}
		return Message{Rows: r}
	}
	broken := Message{Err: errors.New("cannot be decoded")}
	tests := []struct {
		name     string
		msgs     []Message
		wantMsgs []int    // the message of each part, in copy order
		wantRows []string // each row's connection and stats id, in copy order
	}{
		{"sorted by connection id",
			[]Message{report("c", "1"), report("a", "1", "2"), report("b", "1")},
			[]int{1, 2, 0}, []string{"a1", "a2", "b1", "c1"}},
		{"a connection's reports in batch order",
			[]Message{report("b", "late"), report("a", "1"), report("b", "early")},
			[]int{1, 0, 2}, []string{"a1", "blate", "bearly"}},
		{"messages without rows left out",
			[]Message{report("b", "1"), broken, report("a", "1")},
			[]int{2, 0}, []string{"a1", "b1"}},
		{"rows without a connection first",
			[]Message{report("a", "1"), report("", "node")},
			[]int{1, 0}, []string{"node", "a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTableBatch(tt.msgs, func(int) bool { return false })
			tr := b.rows["t"]
			if !slices.Equal(tr.msgs, tt.wantMsgs) {
				t.Errorf("parts of messages %v, want %v", tr.msgs, tt.wantMsgs)
			}
			var got []string
			for tr.Next() {
				row, _ := tr.Values()
				got = append(got, row[0].(string)+row[1].(string))
			}
			if !slices.Equal(got, tt.wantRows) {
				t.Errorf("rows copied %v, want %v", got, tt.wantRows)
			}
		})
	}
}
