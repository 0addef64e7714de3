package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

func TestConnectSettings(t *testing.T) {
	ns := testenv.NATS(t)
	nc, err := stream.Connect(ns.URL(), "stream-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{name: "name", got: nc.Opts.Name, want: "stream-test"},
		{name: "max reconnects", got: nc.Opts.MaxReconnect, want: -1},
		{name: "reconnect wait", got: nc.Opts.ReconnectWait, want: 500 * time.Millisecond},
		{name: "reconnect jitter", got: nc.Opts.ReconnectJitter, want: 250 * time.Millisecond},
		{name: "ping interval", got: nc.Opts.PingInterval, want: 10 * time.Second},
		{name: "max pings outstanding", got: nc.Opts.MaxPingsOut, want: 2},
		{name: "retry on failed connect", got: nc.Opts.RetryOnFailedConnect, want: false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestConnectLogsAndReconnects follows a connection through an outage and a clean close:
// each event is logged once, at Warn only for the outage, and OnConnect runs after the
// connection and the reconnection.
func TestConnectLogsAndReconnects(t *testing.T) {
	ns := testenv.NATS(t)
	logs := &recorder{}
	var connects atomic.Int32
	nc, err := stream.Connect(ns.URL(), "stream-test", slog.New(logs), stream.OnConnect(func() { connects.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testenv.Eventually(t, 10*time.Second, func() error { return wantConnects(&connects, 1) })

	ns.Shutdown()
	testenv.Eventually(t, 10*time.Second, func() error { return logs.has(slog.LevelWarn, "nats disconnected", "err") })
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return wantConnects(&connects, 2) })
	stream.Close(nc) // logs the clean disconnection before it returns

	want := []entry{
		{slog.LevelInfo, "nats connected", []string{"url"}},
		{slog.LevelWarn, "nats disconnected", []string{"err"}},
		{slog.LevelInfo, "nats reconnected", []string{"url"}},
		{slog.LevelInfo, "nats disconnected", nil},
	}
	if got := logs.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logged\n%v\nwant\n%v", got, want)
	}
}

func TestConnectRetryOnFailedConnect(t *testing.T) {
	ns := testenv.NATS(t)
	url := ns.URL()
	ns.Shutdown() // nothing listens there until Restart

	for _, tc := range []struct {
		name    string
		opts    []stream.ConnectOption
		wantErr bool
	}{
		{name: "without, an unreachable server is an error", wantErr: true},
		{name: "with, it connects in the background", opts: []stream.ConnectOption{stream.RetryOnFailedConnect()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var connects atomic.Int32
			opts := append(tc.opts, stream.OnConnect(func() { connects.Add(1) }))
			nc, err := stream.Connect(url, "stream-test", slog.New(slog.DiscardHandler), opts...)
			if tc.wantErr {
				if !errors.Is(err, nats.ErrNoServers) {
					t.Fatalf("got %v, want %v", err, nats.ErrNoServers)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if nc.IsConnected() {
				t.Fatal("connected to a server that is down")
			}
			if err := ns.Restart(); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, func() error { return wantConnects(&connects, 1) })
		})
	}
}

func wantConnects(n *atomic.Int32, want int32) error {
	if got := n.Load(); got != want {
		return fmt.Errorf("OnConnect ran %d times, want %d", got, want)
	}
	return nil
}

// entry is a log record reduced to what callers may depend on.
type entry struct {
	level slog.Level
	msg   string
	keys  []string
}

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct {
	mu      sync.Mutex
	entries []entry
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	e := entry{level: rec.Level, msg: rec.Message}
	rec.Attrs(func(a slog.Attr) bool {
		e.keys = append(e.keys, a.Key)
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return nil
}

func (r *recorder) all() []entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]entry(nil), r.entries...)
}

func (r *recorder) has(level slog.Level, msg, key string) error {
	for _, e := range r.all() {
		if e.level == level && e.msg == msg && fmt.Sprint(e.keys) == fmt.Sprint([]string{key}) {
			return nil
		}
	}
	return fmt.Errorf("no %s %q with key %s in %v", level, msg, key, r.all())
}

// TestCloseReturns checks that Close does not wait for handlers that never run.
func TestCloseReturns(t *testing.T) {
	ns := testenv.NATS(t)
	down := testenv.NATS(t)
	downURL := down.URL()
	down.Shutdown()
	discard := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		conn func() (*nats.Conn, error)
	}{
		{name: "connected", conn: func() (*nats.Conn, error) { return stream.Connect(ns.URL(), "stream-test", discard) }},
		{name: "never connected", conn: func() (*nats.Conn, error) {
			return stream.Connect(downURL, "stream-test", discard, stream.RetryOnFailedConnect())
		}},
		{name: "closed before", conn: func() (*nats.Conn, error) {
			nc, err := stream.Connect(ns.URL(), "stream-test", discard)
			if err == nil {
				nc.Close()
			}
			return nc, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := tc.conn()
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				stream.Close(nc)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return within 10s")
			}
			if !nc.IsClosed() {
				t.Error("the connection is not closed")
			}
		})
	}
}
