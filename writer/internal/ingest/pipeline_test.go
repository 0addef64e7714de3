package ingest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
	"kohaku/writer/internal/writertest"
)

// TestPipelineWritesBatchesAtOnce runs the pipeline over a backlog with writes that wait
// until as many are in flight as there are writers: every message is written once, that
// many batches are written at once and never more, and a failed write ends the pipeline
// with its error.
func TestPipelineWritesBatchesAtOnce(t *testing.T) {
	const n = 24
	msgs := writertest.Messages(t, n)
	js := writertest.NewJetStream(t)
	for _, m := range msgs {
		js.Publish(t, m)
	}
	tests := []struct {
		name    string
		writers int
		fail    bool // the third write fails
		wantErr error
	}{
		{name: "one writer", writers: 1, wantErr: errStop},
		{name: "two writers", writers: 2, wantErr: errStop},
		{name: "three writers", writers: 3, wantErr: errStop},
		{name: "a failed write ends it", writers: 2, fail: true, wantErr: errFailedWrite},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cons, err := js.JS.CreateOrUpdateConsumer(ctx, stream.Name, jetstream.ConsumerConfig{
				Durable: "pipeline-" + strconv.Itoa(i), AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				t.Fatal(err)
			}
			it, err := cons.Messages()
			if err != nil {
				t.Fatal(err)
			}
			defer it.Stop()
			accept := func(m jetstream.Msg) (bool, bool) {
				meta, err := m.Metadata()
				return true, err == nil && meta.Sequence.Stream == n
			}
			var (
				mu             sync.Mutex
				inFlight, most int
				writes         int
				seen           = map[uint64]int{}
				full           = make(chan struct{}) // closed once writers writes were in flight
				fullOnce       sync.Once
			)
			write := func(db *decodedBatch) error {
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				writes++
				k := writes
				if inFlight == tt.writers {
					fullOnce.Do(func() { close(full) })
				}
				for _, m := range db.items {
					seen[m.Seq]++
				}
				mu.Unlock()
				defer func() {
					mu.Lock()
					inFlight--
					mu.Unlock()
				}()
				select { // the first batches wait for each other: they are written at once
				case <-full:
				case <-ctx.Done():
					return ctx.Err()
				}
				if tt.fail && k == 3 {
					return errFailedWrite
				}
				return nil
			}
			err = pipeline(ctx, it, bounds{messages: 2, bytes: 64 << 20, rows: 1 << 20, wait: time.Second}, accept, tt.writers, nil, write)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("pipeline returned %v, want %v", err, tt.wantErr)
			}
			if most != tt.writers {
				t.Errorf("most writes in flight: got %d, want %d", most, tt.writers)
			}
			if tt.fail {
				return
			}
			for seq := uint64(1); seq <= n; seq++ {
				if seen[seq] != 1 {
					t.Errorf("message %d written %d times, want once", seq, seen[seq])
				}
			}
		})
	}
}

var errFailedWrite = errors.New("write failed")
