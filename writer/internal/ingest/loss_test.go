package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/stream"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/testenv"
	"kohaku/writer/internal/ingest"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

// lossLog keeps the ranges of the "messages lost" lines logged at Warn.
type lossLog struct {
	mu     sync.Mutex
	ranges [][2]uint64
}

func (l *lossLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lossLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lossLog) WithGroup(string) slog.Handler            { return l }

func (l *lossLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level != slog.LevelWarn || len(r.Message) < 13 || r.Message[:13] != "messages lost" {
		return nil
	}
	var first, last uint64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "first_seq":
			first = a.Value.Uint64()
		case "last_seq":
			last = a.Value.Uint64()
		}
		return true
	})
	l.mu.Lock()
	l.ranges = append(l.ranges, [2]uint64{first, last})
	l.mu.Unlock()
	return nil
}

func (l *lossLog) all() [][2]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ranges)
}

// runUntil runs a Consumer with o (defaults applied) logging to log, until the returned
// stop is called or the test ends.
func (e *env) runUntil(t *testing.T, o ingest.Options, log *slog.Logger) (*prometheus.Registry, func()) {
	t.Helper()
	defaults(t, &o)
	reg := prometheus.NewRegistry()
	c, err := ingest.New(e.js.JS, store.New(e.pool, log, reg), o, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return reg, stop
}

// TestLostMessagesAreLoggedAndCounted loses messages in the ways a writer can find: deleted
// or expired past MaxAge while no writer ran (the stream starts past the consumer's ack
// floor), and expired undelivered while the
// writer waits for its database (the stream starts past the last delivered message). Each
// lost range is logged once at Warn with its sequences and counted; the other messages are
// stored.
func TestLostMessagesAreLoggedAndCounted(t *testing.T) {
	quick := ingest.Options{BatchSize: 1, MaxAckPending: 1, BatchWait: 10 * time.Millisecond,
		LagEvery: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		maxAge time.Duration // of the stream; 0: the default
		// lose publishes the second half of msgs (the first half is stored by a writer
		// that ran before) and loses some of it, as a running writer with reg and log
		// sees or not (start starts it); it returns the stream sequences lost.
		lose func(t *testing.T, e *env, second []writertest.Message, start func()) []uint64
		want [][2]uint64
	}{
		{
			// As a trim or MaxAge does: from the front, the written first half with the
			// first two of the second.
			name: "deleted while no writer ran",
			lose: func(t *testing.T, e *env, second []writertest.Message, start func()) []uint64 {
				seqs := e.publish(t, second)
				for seq := uint64(1); seq <= seqs[1]; seq++ {
					if err := e.kohaku(t).DeleteMsg(context.Background(), seq); err != nil {
						t.Fatal(err)
					}
				}
				start()
				return seqs[:2]
			},
			want: [][2]uint64{{11, 12}},
		},
		{
			name:   "expired while no writer ran",
			maxAge: time.Second,
			lose: func(t *testing.T, e *env, second []writertest.Message, start func()) []uint64 {
				seqs := e.publish(t, second)
				e.waitFirstSeq(t, seqs[len(seqs)-1]+1)
				start()
				return seqs
			},
			want: [][2]uint64{{11, 20}},
		},
		{
			// As MaxAge does, but in a chosen order: were the held message to go first,
			// the consumer would deliver the next one in its place.
			name: "gone undelivered while the database was away",
			lose: func(t *testing.T, e *env, second []writertest.Message, start func()) []uint64 {
				dbtest.BlockDatabase(t, e.url)
				start()
				seqs := e.publish(t, second)
				// The writer holds the first (MaxAckPending 1) and writes it once the
				// database is back; the others go undelivered.
				e.waitAckPending(t, 1)
				// The undelivered first, then the rest: the stream then starts past the
				// last delivered message. (A purge would move the consumer past them too.)
				for _, seq := range append(slices.Clone(seqs[1:]), seqs[0], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10) {
					if err := e.kohaku(t).DeleteMsg(context.Background(), seq); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(300 * time.Millisecond) // a few looks at the stream
				dbtest.AllowDatabase(t, e.url)
				return seqs[1:]
			},
			want: [][2]uint64{{12, 20}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.maxAge > 0 {
				cfg := stream.DefaultConfig()
				cfg.MaxAge, cfg.Duplicates = tc.maxAge, tc.maxAge
				if _, err := stream.Ensure(context.Background(), e.js.JS, cfg); err != nil {
					t.Fatal(err)
				}
			}
			msgs := writertest.Messages(t, 20)
			first, second := msgs[:10], msgs[10:]
			_, stop := e.runUntil(t, quick, writertest.Logger(t))
			e.publish(t, first)
			e.waitSettled(t, stream.Consumer)
			stop()
			// The stopped writer's last pull request must be gone: else JetStream hands it
			// the next message published, which then counts as delivered (losses, doc).
			e.waitNoPullWaiting(t)

			logs := &lossLog{}
			var reg *prometheus.Registry
			lostSeqs := tc.lose(t, e, second, func() { reg, _ = e.runUntil(t, quick, slog.New(logs)) })
			kept := slices.Clone(first)
			for i, m := range second {
				if !slices.Contains(lostSeqs, uint64(11+i)) {
					kept = append(kept, m)
				}
			}
			writertest.WaitCounts(t, e.pool, writertest.Expect(t, kept), 60*time.Second)
			e.waitSettled(t, stream.Consumer)
			testenv.Eventually(t, 5*time.Second, func() error {
				if got := writertest.Metric(t, reg, "kohaku_writer_lost_messages_total"); got != float64(len(lostSeqs)) {
					return fmt.Errorf("kohaku_writer_lost_messages_total = %v, want %d", got, len(lostSeqs))
				}
				return nil
			})
			if got := logs.all(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("logged lost ranges %v, want %v", got, tc.want)
			}
		})
	}
}

// kohaku returns the stream.
func (e *env) kohaku(t *testing.T) jetstream.Stream {
	t.Helper()
	s, err := e.js.JS.Stream(context.Background(), stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFirstSeq waits until the stream's first sequence is at least seq: every message
// before it expired.
func (e *env) waitFirstSeq(t *testing.T, seq uint64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		s, err := e.js.JS.Stream(context.Background(), stream.Name)
		if err != nil {
			return err
		}
		if first := s.CachedInfo().State.FirstSeq; first < seq {
			return fmt.Errorf("stream starts at %d, want %d", first, seq)
		}
		return nil
	})
}

// waitNoPullWaiting waits until the writers' consumer holds no pull request.
func (e *env) waitNoPullWaiting(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := e.js.JS.Consumer(context.Background(), stream.Name, stream.Consumer)
		if err != nil {
			return err
		}
		if n := c.CachedInfo().NumWaiting; n != 0 {
			return fmt.Errorf("%d pull requests waiting, want none", n)
		}
		return nil
	})
}

// waitAckPending waits until the writers' consumer has n messages delivered and not
// acknowledged.
func (e *env) waitAckPending(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := e.js.JS.Consumer(context.Background(), stream.Name, stream.Consumer)
		if err != nil {
			return err
		}
		if got := c.CachedInfo().NumAckPending; got != n {
			return fmt.Errorf("%d messages delivered and not acknowledged, want %d", got, n)
		}
		return nil
	})
}
