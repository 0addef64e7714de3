package reliability

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
	"kohaku/writer/embedded"
)

// Settings of every scenario: short waits, so that recovery fits in seconds of test.
const (
	ackWait        = 3 * time.Second // the writer: redelivery of what a killed writer held
	publishTimeout = 5 * time.Second // the receiver's default: 503 when JetStream is slower
)

// setup says what a scenario runs.
type setup struct {
	cluster    bool          // three JetStream nodes and a stream of three replicas
	receivers  int           // receiver processes, at least 1
	duplicates time.Duration // the stream's duplicate window; 0: the default, 2 minutes
	maxBytes   int64         // the stream's MaxBytes; 0: the default, 10 GiB
	// receiverEnv is added to every receiver's environment.
	receiverEnv []string
}

// pipeline is a running Kohaku: NATS, a fresh database, a writer and receivers.
type pipeline struct {
	t         *testing.T
	nats      []*embedded.Server
	natsURL   string // every node, comma separated
	stream    stream.Config
	js        jetstream.JetStream // the test's own client, to look at the stream
	dbURL     string
	pool      *pgxpool.Pool
	writer    *process
	receivers []*process
	start     time.Time // before anything was sent
}

// newPipeline starts NATS, creates the stream and a database, and starts the writer and
// the receivers, waiting until each is ready.
func newPipeline(t *testing.T, s setup) *pipeline {
	t.Helper()
	p := &pipeline{t: t, start: time.Now(), stream: stream.DefaultConfig()}
	p.dbURL = dbtest.Database(t)
	pool, err := pgxpool.New(context.Background(), p.dbURL)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	p.pool = pool

	if s.cluster {
		p.nats = startCluster(t, 3)
		p.stream.Replicas = 3
	} else {
		p.nats = []*embedded.Server{startNode(t)}
	}
	if s.duplicates > 0 {
		p.stream.Duplicates = s.duplicates
	}
	if s.maxBytes > 0 {
		p.stream.MaxBytes = s.maxBytes
	}
	urls := make([]string, len(p.nats))
	for i, n := range p.nats {
		urls[i] = n.URL()
	}
	p.natsURL = strings.Join(urls, ",")
	p.js = p.connect()
	// Created here rather than by the services: a cluster elects its meta leader in about a
	// second, and a service's first attempt would wait for the 5s API timeout.
	p.ensureStream()

	p.startWriter()
	for i := range max(s.receivers, 1) {
		p.receivers = append(p.receivers, p.startReceiver(i, s.receiverEnv...))
	}
	p.writer.waitReady(t, 60*time.Second)
	for _, r := range p.receivers {
		r.waitReady(t, 30*time.Second)
	}
	return p
}

// streamEnv is the stream configuration every service is given: the one ensureStream made,
// so that neither changes it.
func (p *pipeline) streamEnv() []string {
	return []string{
		"KOHAKU_NATS_URL=" + p.natsURL,
		"KOHAKU_STREAM_REPLICAS=" + strconv.Itoa(p.stream.Replicas),
		"KOHAKU_STREAM_DUPLICATES=" + p.stream.Duplicates.String(),
		"KOHAKU_STREAM_MAX_BYTES=" + strconv.FormatInt(p.stream.MaxBytes, 10),
	}
}

// startWriter starts a kohaku-writer that migrates the database; it does not wait for it.
func (p *pipeline) startWriter() *process {
	admin := proc.FreeAddr(p.t)
	env := append(p.streamEnv(),
		"KOHAKU_DATABASE_URL="+p.dbURL,
		"KOHAKU_ADMIN_LISTEN="+admin,
		"KOHAKU_MIGRATE=true",
		"KOHAKU_BATCH_WAIT=50ms",
		"KOHAKU_ACK_WAIT="+ackWait.String(),
	)
	p.writer = start(p.t, "kohaku-writer", binaries.writer, admin, env)
	return p.writer
}

// startReceiver starts receiver number i on free loopback ports and waits for its
// addresses.
func (p *pipeline) startReceiver(i int, extra ...string) *process {
	t := p.t
	t.Helper()
	env := append(p.streamEnv(),
		"KOHAKU_LISTEN=127.0.0.1:0",
		"KOHAKU_ADMIN_LISTEN=127.0.0.1:0",
		"KOHAKU_RECEIVER_ID=receiver-"+strconv.Itoa(i),
		"KOHAKU_PUBLISH_TIMEOUT="+publishTimeout.String(),
		"KOHAKU_RETRY_AFTER=1s",
	)
	r := start(t, "kohaku-receiver "+strconv.Itoa(i), binaries.receiver, "", append(env, extra...))
	r.waitListening(t, 30*time.Second)
	return r
}

// collectorURLs returns the /collector URL of every receiver.
func (p *pipeline) collectorURLs() []string {
	out := make([]string, len(p.receivers))
	for i, r := range p.receivers {
		out[i] = "http://" + r.addr + "/collector"
	}
	return out
}

// connect returns a JetStream client of the pipeline's NATS, closed at the test's end.
func (p *pipeline) connect() jetstream.JetStream {
	t := p.t
	t.Helper()
	nc, err := nats.Connect(p.natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// ensureStream creates the stream, retrying briefly while a cluster has no meta leader.
func (p *pipeline) ensureStream() {
	t := p.t
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := stream.Ensure(ctx, p.js, p.stream)
		return err
	})
}

// drained waits until the writer acknowledged every message of the stream: from then on
// the database holds all that it will hold.
func (p *pipeline) drained(timeout time.Duration) {
	t := p.t
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if p.writer.Exited() {
			t.Fatalf("kohaku-writer exited: %v", p.writer.Err())
		}
		ci, last, err := p.consumer()
		if err != nil {
			return err
		}
		if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.AckFloor.Stream < last {
			return fmt.Errorf("writer behind: %d messages not delivered, %d not acknowledged, acknowledged up to %d of %d",
				ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream, last)
		}
		return nil
	})
}

// consumer returns the state of the writers' durable consumer and the last sequence of
// the stream.
func (p *pipeline) consumer() (*jetstream.ConsumerInfo, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, stream.Name)
	if err != nil {
		return nil, 0, fmt.Errorf("stream: %w", err)
	}
	c, err := s.Consumer(ctx, stream.Consumer)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer: %w", err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer info: %w", err)
	}
	return ci, s.CachedInfo().State.LastSeq, nil
}

// startNode starts one embedded JetStream node on a loopback port, as the writer runs it
// with KOHAKU_EMBEDDED_NATS.
func startNode(t *testing.T) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// startCluster starts a JetStream cluster of n embedded nodes on loopback ports.
func startCluster(t *testing.T, n int) []*embedded.Server {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = proc.FreeAddr(t)
	}
	type started struct {
		i   int
		s   *embedded.Server
		err error
	}
	ch := make(chan started, n)
	for i := range n {
		// Together: a node waits for its routes before it is ready for clients.
		go func() {
			s, err := embedded.Start(embedded.Options{
				Listen: "127.0.0.1:0", Dir: t.TempDir(),
				Name: "node-" + strconv.Itoa(i), Cluster: "kohaku-test", ClusterListen: routes[i], Routes: routes,
			})
			ch <- started{i, s, err}
		}()
	}
	nodes := make([]*embedded.Server, n)
	var failed error
	for range n {
		r := <-ch
		if r.err != nil {
			failed = r.err
			continue
		}
		nodes[r.i] = r.s
		t.Cleanup(r.s.Shutdown)
	}
	if failed != nil {
		t.Fatalf("start the JetStream cluster: %v", failed)
	}
	return nodes
}
