package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kohaku/pkg/stream"
	"kohaku/testsupport/proc"
	"kohaku/tools/internal/sim"
)

// The writer's memory ceiling as README's "Operations" states it: each of the N + 2 batches
// that a writer holds at most (N = KOHAKU_WRITE_CONNECTIONS written, one decoded and
// waiting, one being collected) takes
//
//	batch = max(3 × KOHAKU_BATCH_MAX_BYTES + 1.7 kB × KOHAKU_BATCH_MAX_ROWS, 95 × max payload)
//
// the second term being one message alone, as large as NATS allows, of empty objects; the
// pull buffer takes max(KOHAKU_BATCH_MAX_BYTES, max payload), Go's collector lets the heap
// grow to twice what is live, and the program itself takes a baseline.
const (
	ceilingBaseline   = 40 << 20 // the writer's resident memory while idle, rounded up
	ceilingBodyCopies = 3        // bytes per body byte of a batch of reports: the body, and its strings in rows
	ceilingRowBytes   = 1700     // the most a row takes beyond those: a bare element of the widest table
	ceilingAlone      = 95       // bytes per body byte of a message of empty objects, decoded
	ceilingGC         = 2        // heap at its largest per byte live (GOGC=100)
)

// memoryCeiling is the most resident memory of a writer with the batch bounds given and
// writeConnections batches written at once, when NATS takes messages of at most
// maxPayload bytes.
func memoryCeiling(batchBytes, batchRows, maxPayload, writeConnections int64) int64 {
	batch := max(ceilingBodyCopies*batchBytes+ceilingRowBytes*batchRows, ceilingAlone*maxPayload)
	pull := max(batchBytes, maxPayload)
	return ceilingBaseline + ceilingGC*((writeConnections+2)*batch+pull)
}

// writeConnections is KOHAKU_WRITE_CONNECTIONS of the writers these scenarios start: the
// default.
const writeConnections = 1

// procStatus returns a "kB" field of /proc/PID/status, such as VmHWM, the peak resident
// memory, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of process %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("process %d: %s %q: %w", pid, field, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("process %d: no %s in /proc status", pid, field)
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ, 100 on Linux
// whatever the kernel's own tick.
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time that process pid has used, user and system, from
// /proc/PID/stat: threads that ended are counted too.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count fields after it. utime
	// and stime are fields 14 and 15 of proc(5), the 12th and 13th after the name.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("process %d: unexpected /proc stat %q", pid, b)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("process %d: /proc stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// report is a connection.user-agent or node.erlang-vm body taken apart: its envelope and
// its stats elements, as written.
type report struct {
	env   map[string]json.RawMessage // without stats
	stats []json.RawMessage
}

func parseReport(t *testing.T, body []byte) report {
	t.Helper()
	var r report
	if err := json.Unmarshal(body, &r.env); err != nil {
		t.Fatalf("report: %v", err)
	}
	if err := json.Unmarshal(r.env["stats"], &r.stats); err != nil {
		t.Fatalf("report stats: %v", err)
	}
	delete(r.env, "stats")
	return r
}

// body returns the report with stats as its elements.
func (r report) body(t *testing.T, stats ...json.RawMessage) []byte {
	t.Helper()
	env := make(map[string]json.RawMessage, len(r.env)+1)
	for k, v := range r.env {
		env[k] = v
	}
	if stats == nil {
		stats = []json.RawMessage{}
	}
	s, err := json.Marshal(stats)
	if err != nil {
		t.Fatalf("encode stats: %v", err)
	}
	env["stats"] = s
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("encode report: %v", err)
	}
	return b
}

// field returns the string member key of the envelope.
func (r report) field(t *testing.T, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.env[key], &s); err != nil {
		t.Fatalf("report %s: %v", key, err)
	}
	return s
}

// element returns e with the members of set added or replaced, written as given.
func element(t *testing.T, e json.RawMessage, set map[string]string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e, &m); err != nil {
		t.Fatalf("element: %v", err)
	}
	for k, v := range set {
		m[k] = json.RawMessage(v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("element: %v", err)
	}
	return out
}

// reports makes valid report bodies of simulated connections that send nothing else:
// every call a report of the next connection, a second later than its last, so that no
// two bodies share a row key.
type reports struct {
	t     *testing.T
	conns []*sim.Connection
	node  *sim.Node
	start time.Time
	n     int
}

func newReports(t *testing.T, seed uint64, connections int) *reports {
	t.Helper()
	tmpl, err := sim.FixtureTemplate()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conns, err := sim.NewConnections(tmpl, sim.Options{Connections: connections, Channels: 2, Seed: seed}, start)
	if err != nil {
		t.Fatal(err)
	}
	return &reports{t: t, conns: conns, node: sim.NewNode(tmpl, seed), start: start}
}

// next returns the next connection.user-agent report, taken apart.
func (g *reports) next() report {
	g.n++
	c := g.conns[g.n%len(g.conns)]
	at := g.start.Add(time.Duration(g.n/len(g.conns)+1) * time.Second)
	return parseReport(g.t, c.Report(at))
}

// nextNode returns the next node.erlang-vm report, taken apart.
func (g *reports) nextNode() report {
	g.n++
	return parseReport(g.t, g.node.Report(g.start.Add(time.Duration(g.n)*time.Millisecond)))
}

// large returns a report of about size bytes made of r's elements over and over, each
// copy with an id of its own: a report of a large room, as normal as r.
func (r report) large(t *testing.T, size int) []byte {
	t.Helper()
	var stats []json.RawMessage
	n := len(r.body(t))
	for k := 0; ; k++ {
		for _, e := range r.stats {
			var m struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(e, &m); err != nil {
				t.Fatal(err)
			}
			id, _ := json.Marshal(m.ID + "~" + strconv.Itoa(k))
			c := element(t, e, map[string]string{"id": string(id)})
			if n+len(c)+1 > size {
				return r.body(t, stats...)
			}
			stats = append(stats, c)
			n += len(c) + 1
		}
	}
}

// fill returns r's envelope with as many copies of elem as make about size bytes.
func (r report) fill(t *testing.T, elem string, size int) []byte {
	t.Helper()
	head := len(r.body(t))
	n := (size - head) / (len(elem) + 1)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(elem)
	}
	b.WriteByte(']')
	env := make(map[string]json.RawMessage, len(r.env)+1)
	for k, v := range r.env {
		env[k] = v
	}
	env["stats"] = b.Bytes()
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publishBacklog publishes bodies straight to the stream, as receivers did before the
// writer came, and waits for every PubAck.
func publishBacklog(t *testing.T, js jetstream.JetStream, typ string, bodies [][]byte) {
	t.Helper()
	for _, b := range bodies {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := js.PublishMsg(ctx, stream.NewMsg(typ, b, time.Now(), "reliability-backlog"))
		cancel()
		if err != nil {
			t.Fatalf("publish a backlog body of %d bytes: %v", len(b), err)
		}
	}
}

// startWriterWith replaces the pipeline's writer with one that has extra in its
// environment, and waits until it is ready.
func (p *pipeline) startWriterWith(extra ...string) *process {
	t := p.t
	t.Helper()
	if p.writer != nil {
		if err := p.writer.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	admin := proc.FreeAddr(t)
	env := append(p.streamEnv(),
		"KOHAKU_DATABASE_URL="+p.dbURL,
		"KOHAKU_ADMIN_LISTEN="+admin,
		"KOHAKU_MIGRATE=true",
		"KOHAKU_BATCH_WAIT=50ms",
		"KOHAKU_ACK_WAIT="+ackWait.String(),
	)
	p.writer = start(t, "kohaku-writer", binaries.writer, admin, append(env, extra...))
	p.writer.waitReady(t, 60*time.Second)
	return p.writer
}

// TestWriterMemoryStaysUnderItsCeiling starts a writer with small batch bounds on a backlog
// of the largest bodies NATS takes, of every kind: empty objects (the most rows a body can
// give), a large room's report, one element of many members, and many ordinary reports.
// While it drains the backlog, its peak resident memory (VmHWM) must stay under the
// ceiling that README states for its settings.
func TestWriterMemoryStaysUnderItsCeiling(t *testing.T) {
	const batchBytes, batchRows = 2 << 20, 10_000
	p := newPipeline(t, setup{receivers: 1})
	maxPayload := p.js.Conn().MaxPayload()
	size := int(maxPayload) - 2048 // room for the headers
	g := newReports(t, 4242, 20)

	var bodies [][]byte
	kinds := map[string]int{}
	add := func(kind string, b []byte) {
		bodies = append(bodies, b)
		kinds[kind]++
	}
	for range 6 {
		add("empty_objects", g.next().fill(t, "{}", size))
		add("large_room", g.next().large(t, size))
	}
	for range 2 {
		r := g.next()
		var e strings.Builder
		e.WriteString(`{"type":"hostile-members","id":"many-members","timestamp":1`)
		for k := 0; e.Len() < size-len(r.body(t))-16; k++ {
			fmt.Fprintf(&e, `,"m%d":%d`, k, k)
		}
		e.WriteString("}")
		add("many_members", r.body(t, json.RawMessage(e.String())))
	}
	for range 300 {
		r := g.next()
		add("ordinary", r.body(t, r.stats...))
	}
	// Large and small mixed, as a backlog of one connection after another would be.
	for i := range bodies {
		j := (i * 7919) % len(bodies)
		bodies[i], bodies[j] = bodies[j], bodies[i]
	}
	// The backlog waits in the stream before the writer starts, as after an outage. The
	// first writer, idle until then, shows the baseline.
	idle, err := procStatus(p.writer.Pid(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.writer.Kill(); err != nil {
		t.Fatal(err)
	}
	publishBacklog(t, p.js, "connection.user-agent", bodies)

	w := p.startWriterWith(
		"KOHAKU_BATCH_MAX_BYTES="+strconv.Itoa(batchBytes),
		"KOHAKU_BATCH_MAX_ROWS="+strconv.Itoa(batchRows),
	)
	start := time.Now()
	p.drained(3 * time.Minute)
	hwm, err := procStatus(w.Pid(), "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	ceiling := memoryCeiling(batchBytes, batchRows, maxPayload, writeConnections)
	var rows int
	if err := p.pool.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM rtc_other_stats) + (SELECT count(*) FROM rtc_inbound_rtp_stats)").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("summary: bodies=%d kinds=%v rows_other_and_inbound=%d drained_in=%s vmhwm=%dMiB ceiling=%dMiB"+
		" (idle_vmhwm=%dMiB batch_max_bytes=%d batch_max_rows=%d max_payload=%d)",
		len(bodies), kinds, rows, time.Since(start).Round(time.Second), hwm>>20, ceiling>>20, idle>>20, batchBytes, batchRows, maxPayload)
	t.Log(line)
	fmt.Printf("%s: %s\n", t.Name(), line)
	if hwm > ceiling {
		t.Errorf("the writer's peak resident memory %d MiB exceeds the ceiling %d MiB that README states for its settings", hwm>>20, ceiling>>20)
	}
}
