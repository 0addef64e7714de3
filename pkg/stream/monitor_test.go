package stream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/stream"
	"kohaku/testsupport/testenv"
)

// runMonitor runs a Monitor of js, looking every 100ms, until the test ends.
func runMonitor(t *testing.T, js jetstream.JetStream, reg prometheus.Registerer) *stream.Monitor {
	t.Helper()
	m := stream.NewMonitor(js, stream.MonitorOptions{Every: 100 * time.Millisecond, FullEvery: 50 * time.Millisecond}, nil, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return m
}

// series returns the value of the gauge name in g and whether it is there.
func series(t *testing.T, g prometheus.Gatherer, name string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// publish publishes n bodies of size bytes and returns the last sequence.
func publish(t *testing.T, js jetstream.JetStream, n, size int) uint64 {
	t.Helper()
	var seq uint64
	for i := range n {
		body := fmt.Appendf(make([]byte, size), "%d", i) // distinct: no deduplication
		ack, err := js.PublishMsg(ctxFor(t), stream.NewMsg("connection.user-agent", body, time.Now(), "test"))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		seq = ack.Sequence
	}
	return seq
}

// ackUpTo fetches the writers' consumer's messages and acknowledges those up to seq.
func ackUpTo(t *testing.T, c jetstream.Consumer, n int, seq uint64) {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Sequence.Stream <= seq {
			if err := m.DoubleAck(ctxFor(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func writersConsumer(t *testing.T, js jetstream.JetStream) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(ctxFor(t), stream.Name, jetstream.ConsumerConfig{
		Durable: stream.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMonitorSeries follows the series through a stream without consumer, with messages
// not acknowledged, and with all acknowledged.
func TestMonitorSeries(t *testing.T) {
	js := jetStream(t)
	if _, err := stream.Ensure(ctxFor(t), js, smallConfig(1<<20)); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 3, 1000)
	reg := prometheus.NewRegistry()
	runMonitor(t, js, reg)

	want := func(name string, check func(v float64, ok bool) error) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			v, ok := series(t, reg, name)
			if err := check(v, ok); err != nil {
				return fmt.Errorf("%s = %v (present %v): %w", name, v, ok, err)
			}
			return nil
		})
	}
	equal := func(want float64) func(float64, bool) error {
		return func(v float64, ok bool) error {
			if !ok || v != want {
				return fmt.Errorf("want %v", want)
			}
			return nil
		}
	}
	want("kohaku_stream_messages", equal(3))
	want("kohaku_stream_max_bytes", equal(1<<20))
	want("kohaku_stream_max_messages", equal(-1))
	want("kohaku_stream_bytes", func(v float64, ok bool) error {
		if !ok || v < 3000 || v > 4000 {
			return errors.New("want about 3 messages of 1000 bytes and their headers")
		}
		return nil
	})
	want("kohaku_stream_oldest_unacked_age_seconds", func(_ float64, ok bool) error {
		if ok {
			return errors.New("want absent: there is no consumer")
		}
		return nil
	})

	c := writersConsumer(t, js)
	time.Sleep(200 * time.Millisecond) // the messages grow older than a second
	time.Sleep(time.Second)
	want("kohaku_stream_oldest_unacked_age_seconds", func(v float64, ok bool) error {
		if !ok || v < 1 || v > 60 {
			return errors.New("want the age of the first message, more than a second")
		}
		return nil
	})
	ackUpTo(t, c, 3, 3)
	want("kohaku_stream_oldest_unacked_age_seconds", equal(0))
}

// TestMonitorFullUntilRoom fills a stream: after a refusal the Monitor reports it full,
// and no longer once a trim made room for the refused message.
func TestMonitorFullUntilRoom(t *testing.T) {
	js := jetStream(t)
	if _, err := stream.Ensure(ctxFor(t), js, smallConfig(64<<10)); err != nil {
		t.Fatal(err)
	}
	c := writersConsumer(t, js)
	m := runMonitor(t, js, nil)
	if err := m.Full(); err != nil {
		t.Fatalf("Full before anything was refused: %v", err)
	}
	big := stream.NewMsg("connection.user-agent", make([]byte, 8<<10), time.Now(), "test")
	var refused error
	for i := 0; refused == nil && i < 100; i++ {
		big.Header.Set(stream.HeaderMsgID, fmt.Sprint(i))
		_, refused = js.PublishMsg(ctxFor(t), big)
	}
	if !stream.IsFull(refused) {
		t.Fatalf("the stream did not fill: %v", refused)
	}
	m.Refused(stream.StoredSize(big))
	// Looks at the stream find it still full: no room for the refused message.
	time.Sleep(300 * time.Millisecond)
	if err := m.Full(); !errors.Is(err, stream.ErrFull) {
		t.Fatalf("Full after a refusal: %v, want %v", err, stream.ErrFull)
	}

	ackUpTo(t, c, 100, 2)
	testenv.Eventually(t, 5*time.Second, func() error {
		s, err := js.Stream(ctxFor(t), stream.Name)
		if err != nil {
			return err
		}
		ci, err := c.Info(ctxFor(t))
		if err != nil {
			return err
		}
		if _, err := stream.Trim(ctxFor(t), &stream.Snapshot{Stream: s, Info: s.CachedInfo(), Consumer: ci}, 50); err != nil {
			return err
		}
		return m.Full()
	})
	if _, err := js.PublishMsg(ctxFor(t), big); err != nil {
		t.Errorf("publish once the Monitor found room: %v", err)
	}
}
