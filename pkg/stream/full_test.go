package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

// jetStream returns a JetStream client of a fresh server, closed at the test's end.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := testenv.NATS(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// smallConfig is a stream of maxBytes with the other settings at their defaults.
func smallConfig(maxBytes int64) stream.Config {
	cfg := stream.DefaultConfig()
	cfg.MaxBytes = maxBytes
	return cfg
}

// TestEnsureMakesAnEarlierStreamDiscardNew plays a stream left by an earlier release, which
// deleted its oldest messages when full: Ensure updates it to refuse new ones instead.
func TestEnsureMakesAnEarlierStreamDiscardNew(t *testing.T) {
	js := jetStream(t)
	ctx := ctxFor(t)
	old := smallConfig(1 << 20).StreamConfig()
	old.Discard = jetstream.DiscardOld
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	s, err := stream.Ensure(ctx, js, smallConfig(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("discard policy after Ensure: got %v, want %v", info.Config.Discard, jetstream.DiscardNew)
	}
}

// TestFullStreamRefusesAndKeepsItsMessages fills a small stream: the first refused publish
// is recognized by IsFull, and every message stored before is still there.
func TestFullStreamRefusesAndKeepsItsMessages(t *testing.T) {
	js := jetStream(t)
	ctx := ctxFor(t)
	s, err := stream.Ensure(ctx, js, smallConfig(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 4<<10)
	var stored uint64
	var refused error
	for i := range 100 {
		msg := stream.NewMsg("connection.user-agent", append(body, fmt.Sprint(i)...), time.Now(), "test")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			refused = err
			break
		}
		stored++
	}
	if refused == nil {
		t.Fatal("100 messages of 4 KiB fit in a 64 KiB stream")
	}
	if !stream.IsFull(refused) {
		t.Fatalf("IsFull(%v) = false, want true", refused)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.State; st.FirstSeq != 1 || st.Msgs != stored {
		t.Errorf("after the refusal the stream holds messages %d.. (%d of them), want all %d from 1", st.FirstSeq, st.Msgs, stored)
	}
}

func TestIsFull(t *testing.T) {
	storeFailed := func(desc string) error {
		return fmt.Errorf("publish: %w", &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: desc})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "bytes limit", err: storeFailed("maximum bytes exceeded"), want: true},
		{name: "messages limit", err: storeFailed("maximum messages exceeded"), want: true},
		{name: "ErrFull wrapped", err: fmt.Errorf("ready: %w", stream.ErrFull), want: true},
		{name: "another store failure", err: storeFailed("message size exceeds maximum allowed")},
		{name: "another API error", err: &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "maximum bytes exceeded"}},
		{name: "timeout", err: context.DeadlineExceeded},
		{name: "no responders", err: jetstream.ErrNoStreamResponse},
		{name: "nil", err: nil},
		{name: "plain text", err: errors.New("maximum bytes exceeded")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream.IsFull(tc.err); got != tc.want {
				t.Errorf("IsFull(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestStoredSizeCoversWhatJetStreamCounts checks StoredSize against the bytes a stream
// reports for the messages the receiver publishes: never less (a refusal would not be
// cleared when it should), and close.
func TestStoredSizeCoversWhatJetStreamCounts(t *testing.T) {
	js := jetStream(t)
	ctx := ctxFor(t)
	s, err := stream.Ensure(ctx, js, stream.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	msg := stream.NewMsg("connection.user-agent", make([]byte, 12<<10), time.Now(), "receiver-1")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, stored := stream.StoredSize(msg), int64(info.State.Bytes)
	if got < stored || got > stored+64 {
		t.Errorf("StoredSize = %d, the stream counts %d: want at least that and at most 64 more", got, stored)
	}
}
