package deploytest

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
	"kohaku/tools/internal/sim"
)

// TestHAProxyLosesNoStoredReport runs the project's HAProxy configuration on loopback in
// front of three kohaku-receiver processes and a kohaku-writer, and sends both of Sora's
// feeds through it at once: stats exporter reports over h2c to /collector and stats
// webhooks over HTTP/1.1 to /stats-webhook. It kills one receiver with SIGKILL in the
// middle. Every report answered 204 must be in the stream; failures are allowed only for
// requests that ended after the kill, and once HAProxy has marked the dead receiver down
// every report must be stored again. Then every stats element of every report in the
// stream must be in the database once: rows per table equal to the elements sent.
func TestHAProxyLosesNoStoredReport(t *testing.T) {
	haproxy := lookPath(t, "haproxy", "Debian package haproxy")
	ns := testenv.NATS(t)
	db := dbtest.Database(t)
	bin := buildReceiver(t)
	writerBin := buildWriter(t)

	const receivers = 3
	var addrs []string
	var procs []*proc.Process
	for i := range receivers {
		addr, admin := proc.FreeAddr(t), proc.FreeAddr(t)
		cmd := exec.Command(bin)
		cmd.Env = proc.CleanEnv(
			"KOHAKU_LISTEN="+addr,
			"KOHAKU_ADMIN_LISTEN="+admin,
			"KOHAKU_NATS_URL="+ns.URL(),
			fmt.Sprintf("KOHAKU_RECEIVER_ID=receiver%d", i+1),
			"KOHAKU_LOG_FORMAT=json",
		)
		p := proc.Start(t, fmt.Sprintf("kohaku-receiver %d", i+1), cmd)
		if err := p.WaitHTTP("http://"+admin+"/readyz", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		addrs, procs = append(addrs, addr), append(procs, p)
	}
	writerAdmin := proc.FreeAddr(t)
	wcmd := exec.Command(writerBin)
	wcmd.Env = proc.CleanEnv(
		"KOHAKU_NATS_URL="+ns.URL(),
		"KOHAKU_DATABASE_URL="+db,
		"KOHAKU_ADMIN_LISTEN="+writerAdmin,
		"KOHAKU_LOG_FORMAT=json",
	)
	writer := proc.Start(t, "kohaku-writer", wcmd)
	if err := writer.WaitHTTP("http://"+writerAdmin+"/readyz", time.Minute); err != nil {
		t.Fatal(err)
	}

	lb, stats := proc.FreeAddr(t), proc.FreeAddr(t)
	project, err := os.ReadFile(filepath.Join(root, "deploy/haproxy/haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loopbackHAProxy(string(project), lb, stats, addrs)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hp := proc.Start(t, "haproxy", exec.Command(haproxy, "-f", cfgFile, "-db"))
	statsURL := "http://" + stats + "/stats;csv"
	testenv.Eventually(t, 30*time.Second, func() error {
		if hp.Exited() {
			t.Fatalf("haproxy ended: %v\n%s", hp.Err(), hp.Output())
		}
		return serversUp(statsURL, receivers)
	})

	collector := "http://" + lb + "/collector"
	h2, err := sim.NewClient(collector, sim.ClientOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	webhookURL := "http://" + lb + "/stats-webhook"
	h1, err := sim.NewClient(webhookURL, sim.ClientOptions{HTTP1: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	exporter := &feed{url: collector, client: h2, reports: newReports(t, sim.FeedExporter, 1)}
	webhook := &feed{url: webhookURL, client: h1, reports: newReports(t, sim.FeedWebhook, 2)}

	// The load of both feeds at once, with receiver 2 killed once a third of it is answered.
	const total, hooks, concurrency = 2400, 1200, 24
	victim := procs[1]
	kill := &trigger{after: (total + hooks) / 3, fired: make(chan struct{})}
	exporterLoad := send(exporter, total, concurrency, kill)
	webhookLoad := send(webhook, hooks, concurrency/2, kill) // one HTTP/1.1 connection per request in flight
	<-kill.fired
	killedAt := time.Now() // requests that end from now on may have lost their receiver
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	results := append(<-exporterLoad, <-webhookLoad...)

	// Once HAProxy's health checks have taken the dead receiver out, nothing may fail.
	testenv.Eventually(t, 30*time.Second, func() error { return serverDown(statsURL, "receiver2") })
	after := append(<-send(exporter, 300, concurrency, nil), <-send(webhook, 150, concurrency/2, nil)...)

	stored := streamMessages(t, ns.URL())
	var ok, failed, storedFailed int
	for _, r := range results {
		switch {
		case r.status == http.StatusNoContent:
			ok++
		case r.ended.Before(killedAt):
			t.Errorf("request failed before the kill: %s", r.problem())
		default:
			failed++
		}
	}
	for _, r := range after {
		if r.status == http.StatusNoContent {
			ok++
		} else {
			t.Errorf("request failed after HAProxy marked the dead receiver down: %s", r.problem())
		}
	}
	var inStream []result // every report the stream holds: the database must hold its elements
	for _, r := range append(results, after...) {
		_, in := stored.ids[r.id]
		switch {
		case r.status == http.StatusNoContent && !in:
			t.Errorf("report %s was answered 204 and is not in the stream", r.id)
		case r.status != http.StatusNoContent && in:
			storedFailed++ // stored, but the answer was lost with the receiver: Sora resends, JetStream dedups
		}
		if in {
			inStream = append(inStream, r)
		}
		delete(stored.ids, r.id)
	}
	for id := range stored.ids {
		t.Errorf("the stream holds %s, which was never sent", id)
	}
	if stored.count != ok+storedFailed {
		t.Errorf("the stream holds %d messages, want the %d answered 204 plus %d stored before their receiver died",
			stored.count, ok, storedFailed)
	}
	for i := range receivers {
		if id := fmt.Sprintf("receiver%d", i+1); stored.byReceiver[id] == 0 {
			t.Errorf("%s stored nothing: HAProxy did not balance (%v)", id, stored.byReceiver)
		}
	}
	for _, typ := range []string{sora.TypeUserAgent, sora.TypeConnectionRTC} {
		if stored.byType[typ] == 0 {
			t.Errorf("the stream holds no %s message (%v)", typ, stored.byType)
		}
	}
	t.Logf("%d requests: %d answered 204, %d failed after the kill (%d of them stored anyway); stream: %d messages by receiver %v, by type %v; haproxy: %s",
		len(results)+len(after), ok, failed, storedFailed, stored.count, stored.byReceiver, stored.byType, retries(statsURL))

	drained(t, writer, ns.URL(), 2*time.Minute)
	checkRows(t, db, inStream)
}

// loopbackHAProxy adapts the project's haproxy.cfg to a run on loopback: the collector and
// stats frontends bind lb and stats, and the server-template, which finds the receivers
// through Docker's DNS, becomes one server line per receiver address. Every other line is
// kept as the project wrote it, so the test exercises its checks, retries and timeouts.
func loopbackHAProxy(cfg, lb, stats string, receivers []string) (string, error) {
	var servers []string
	for i, addr := range receivers {
		servers = append(servers, fmt.Sprintf("\tserver receiver%d %s", i+1, addr))
	}
	replace := map[string]string{
		"bind :5890": "\tbind " + lb,
		"bind :8404": "\tbind " + stats,
		"server-template receiver 1-10 receiver:5890": strings.Join(servers, "\n"),
	}
	seen := map[string]int{}
	lines := strings.Split(cfg, "\n")
	for i, l := range lines {
		d := strings.Join(strings.Fields(l), " ")
		if r, ok := replace[d]; ok {
			lines[i] = r
			seen[d]++
		}
	}
	for d := range replace {
		if seen[d] != 1 {
			return "", fmt.Errorf("haproxy.cfg has %d lines %q, want 1: adapt loopbackHAProxy to the new configuration", seen[d], d)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// reports makes distinct bodies of one feed from the simulator, so that each request has
// its own Nats-Msg-Id and none is taken for a retry of another.
type reports struct {
	feed  sim.Feed
	conns []*sim.Connection
	now   time.Time
	n     int
	seen  map[string]bool
	t     *testing.T
}

// newReports returns the reports of feed; seeds differ between feeds so that their
// connections do too.
func newReports(t *testing.T, feed sim.Feed, seed uint64) *reports {
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	conns, err := sim.NewConnections(tmpl, sim.Options{Connections: 50, Channels: 5, Seed: seed}, now)
	if err != nil {
		t.Fatal(err)
	}
	return &reports{feed: feed, conns: conns, now: now, seen: map[string]bool{}, t: t}
}

// typ returns the message type of the feed's reports.
func (r *reports) typ() string {
	if r.feed == sim.FeedWebhook {
		return sora.TypeConnectionRTC
	}
	return sora.TypeUserAgent
}

// next returns n more bodies.
func (r *reports) next(n int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		r.n++
		r.now = r.now.Add(time.Millisecond) // every report of a connection has its own timestamp
		c := r.conns[r.n%len(r.conns)]
		if r.feed == sim.FeedWebhook {
			bodies[i] = c.Webhook(r.now)
		} else {
			bodies[i] = c.Report(r.now)
		}
		id := stream.MsgID(r.typ(), bodies[i])
		if r.seen[id] {
			r.t.Fatalf("report %d repeats an earlier body", r.n)
		}
		r.seen[id] = true
	}
	return bodies
}

// feed is where and how one of Sora's feeds goes.
type feed struct {
	url     string
	client  *http.Client
	reports *reports
}

// result is the outcome of one request.
type result struct {
	id     string // the Nats-Msg-Id its body gets
	typ    string // the message type
	body   []byte
	status int // 0 when no answer came
	err    error
	answer string
	ended  time.Time
}

func (r result) problem() string {
	if r.err != nil {
		return fmt.Sprintf("%s %s: %v", r.typ, r.id, r.err)
	}
	return fmt.Sprintf("%s %s: %d %s", r.typ, r.id, r.status, r.answer)
}

// trigger closes fired once after requests have ended, counted over every load that
// shares it.
type trigger struct {
	after int64
	ended atomic.Int64
	fired chan struct{}
}

func (k *trigger) count() {
	if k != nil && k.ended.Add(1) == k.after {
		close(k.fired)
	}
}

// send posts n more reports of f with concurrency requests in flight and delivers every
// result when all have ended, counting each in kill (nil: none).
func send(f *feed, n, concurrency int, kill *trigger) <-chan []result {
	out := make(chan []result, 1)
	bodies, typ := f.reports.next(n), f.reports.typ()
	results := make([]result, len(bodies))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				results[i] = post(f.client, f.url, typ, bodies[i])
				kill.count()
			}
		})
	}
	go func() {
		wg.Wait()
		out <- results
	}()
	return out
}

// post sends one report as Sora does: a webhook over HTTP/1.1 with the webhook's header,
// an exporter report over HTTP/2 with the exporter's.
func post(client *http.Client, url, typ string, body []byte) result {
	r := result{id: stream.MsgID(typ, body), typ: typ, body: body}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		r.err, r.ended = err, time.Now()
		return r
	}
	req.Header.Set("content-type", "application/json")
	header, major := sora.HeaderExporterType, 2
	if sora.WebhookType(typ) {
		header, major = sora.HeaderWebhookType, 1
	}
	req.Header.Set(header, typ)
	resp, err := client.Do(req)
	if err != nil {
		r.err, r.ended = err, time.Now()
		return r
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	r.status, r.answer, r.ended = resp.StatusCode, strings.TrimSpace(string(answer)), time.Now()
	if resp.ProtoMajor != major {
		r.status, r.err = 0, fmt.Errorf("answered over %s, want HTTP/%d", resp.Proto, major)
	}
	return r
}

// stored is what the stream holds.
type stored struct {
	count      int
	ids        map[string]struct{} // Nats-Msg-Id of each message
	byReceiver map[string]int      // messages by Kohaku-Receiver
	byType     map[string]int      // messages by the last part of their subject
}

// streamMessages reads every message of the KOHAKU stream.
func streamMessages(t *testing.T, url string) stored {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st := stored{ids: map[string]struct{}{}, byReceiver: map[string]int{}, byType: map[string]int{}}
	for st.count < int(info.State.Msgs) {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			st.count++
			id := m.Headers().Get(stream.HeaderMsgID)
			if _, dup := st.ids[id]; dup {
				t.Errorf("the stream holds %s twice", id)
			}
			st.ids[id] = struct{}{}
			st.byReceiver[m.Headers().Get(stream.HeaderReceiver)]++
			st.byType[strings.TrimPrefix(m.Subject(), stream.SubjectPrefix)]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of the stream's %d messages, then nothing came", st.count, info.State.Msgs)
		}
	}
	return st
}

// haproxyStats reads HAProxy's CSV statistics: one map of column to value per proxy and server.
func haproxyStats(url string) ([]map[string]string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# "))).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("haproxy stats %q: %v", body, err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, col := range recs[0] {
			if i < len(rec) {
				row[col] = rec[i]
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// serversUp reports whether the backend "receivers" has n servers UP.
func serversUp(url string, n int) error {
	rows, err := haproxyStats(url)
	if err != nil {
		return err
	}
	var up []string
	for _, r := range rows {
		if r["pxname"] == "receivers" && r["svname"] != "BACKEND" && r["status"] == "UP" {
			up = append(up, r["svname"])
		}
	}
	if len(up) != n {
		return fmt.Errorf("servers up: %v, want %d", up, n)
	}
	return nil
}

// serverDown reports whether HAProxy has marked server down.
func serverDown(url, server string) error {
	rows, err := haproxyStats(url)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r["pxname"] == "receivers" && r["svname"] == server {
			if strings.HasPrefix(r["status"], "DOWN") {
				return nil
			}
			return fmt.Errorf("%s is %s", server, r["status"])
		}
	}
	return fmt.Errorf("no server %s", server)
}

// retries describes the backend's retries and redispatches, for the log.
func retries(url string) string {
	rows, err := haproxyStats(url)
	if err != nil {
		return err.Error()
	}
	for _, r := range rows {
		if r["pxname"] == "receivers" && r["svname"] == "BACKEND" {
			return fmt.Sprintf("%s retries, %s redispatches, %s responses 5xx", r["wretr"], r["wredis"], r["hrsp_5xx"])
		}
	}
	return "no backend statistics"
}
