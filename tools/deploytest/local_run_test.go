package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/pkg/sora"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
	"kohaku/tools/internal/sim"
)

// TestLocalRun runs `make run`'s script, deploy/local/run.sh, as a new user would, on free
// ports against a fresh database: it must build both programs, start them, print the
// sora.conf lines of both feeds, store what Sora sends on each (the stats webhook over
// HTTP/1.1, the stats exporter over h2c), and stop cleanly on Ctrl-C (SIGINT).
func TestLocalRun(t *testing.T) {
	bash := lookPath(t, "bash", "Debian package bash")
	lookPath(t, "go", "the Go toolchain, which builds the programs")
	bin := t.TempDir() // shared by the cases, so the second build is a cache hit
	tests := []struct {
		name string
		nats func(t *testing.T) (env []string, says string)
		auth bool // the receiver requires HTTP Basic authentication
	}{
		{"writer embeds JetStream", func(t *testing.T) ([]string, string) {
			addr := proc.FreeAddr(t)
			return []string{"KOHAKU_EMBEDDED_NATS=true", "KOHAKU_EMBEDDED_NATS_LISTEN=" + addr,
				"KOHAKU_EMBEDDED_NATS_DIR=" + t.TempDir()}, "embedding JetStream in the writer at " + addr
		}, false},
		{"NATS that answers is used, with Basic authentication", func(t *testing.T) ([]string, string) {
			ns := testenv.NATS(t)
			return []string{"KOHAKU_NATS_URL=" + ns.URL()}, "using the NATS server that answers at"
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := dbtest.Database(t)
			natsEnv, says := tt.nats(t)
			listen := proc.FreeAddr(t)
			cmd := exec.Command(bash, filepath.Join(root, "deploy/local/run.sh"))
			cmd.Env = proc.CleanEnv(natsEnv...)
			cmd.Env = append(cmd.Env,
				"KOHAKU_LOCAL_BIN="+bin,
				"KOHAKU_LISTEN="+listen,
				"KOHAKU_LOCAL_RECEIVER_ADMIN_LISTEN="+proc.FreeAddr(t),
				"KOHAKU_LOCAL_WRITER_ADMIN_LISTEN="+proc.FreeAddr(t),
				"KOHAKU_DATABASE_URL="+db,
				"KOHAKU_LOG_FORMAT=json",
			)
			var auth sim.ClientOptions
			if tt.auth {
				auth = sim.ClientOptions{BasicAuthUser: "sora", BasicAuthPassword: "local-secret"}
				cmd.Env = append(cmd.Env, "KOHAKU_BASIC_AUTH_USER=sora", "KOHAKU_BASIC_AUTH_PASSWORD=local-secret")
			}
			p := proc.Start(t, "deploy/local/run.sh", cmd)
			t.Cleanup(func() {
				if t.Failed() {
					killChildren(p)
				}
			})

			collector := "http://" + listen + "/collector"
			webhook := "http://" + listen + "/stats-webhook"
			testenv.Eventually(t, 5*time.Minute, func() error { // the first build can be slow
				if p.Exited() {
					t.Fatalf("run.sh ended before it was ready: %v\n%s", p.Err(), p.Output())
				}
				// The message comes in several writes; its last line says it is all there.
				if !strings.Contains(p.Output(), "Ctrl-C stops both.") {
					return fmt.Errorf("run.sh has not said it is ready")
				}
				return nil
			})
			wantSaid := []string{says,
				// The webhook first: current Sora sends it; the comments name the Sora of each.
				"Point Sora at it (sora.conf):\n  stats_webhook_url = " + webhook + "  ",
				"  # Sora 2025.1 and later\n  stats_collector_url = " + collector + "  ",
				"  # older Sora (stats exporter)\n",
				"go run ./tools/cmd/sora-sim --feed webhook --url " + webhook,
				"--feed exporter --url " + collector,
			}
			if tt.auth {
				wantSaid = append(wantSaid, "HTTP Basic authentication as user sora", "--basic-auth sora:PASSWORD")
			}
			out := p.Output()
			for _, want := range wantSaid {
				if !strings.Contains(out, want) {
					t.Errorf("run.sh does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "local-secret") {
				t.Errorf("run.sh prints the Basic authentication password:\n%s", out)
			}

			want := append(postFixtures(t, collector, auth), postWebhooks(t, webhook, auth)...)
			slices.Sort(want)
			if tt.auth {
				resp, err := http.Post(webhook, "application/json", strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("POST without credentials: %s, want 401", resp.Status)
				}
			}
			conn, err := pgx.Connect(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			testenv.Eventually(t, 30*time.Second, func() error {
				got, err := storedConnections(t.Context(), conn)
				if err != nil {
					return err
				}
				if !slices.Equal(got, want) {
					return fmt.Errorf("sora_connection holds %v, want %v", got, want)
				}
				var stats, vm int
				if err := conn.QueryRow(t.Context(), `SELECT
					(SELECT count(*) FROM rtc_outbound_rtp_stats) + (SELECT count(*) FROM rtc_inbound_rtp_stats),
					(SELECT count(*) FROM sora_node_erlang_vm_memory)`).Scan(&stats, &vm); err != nil {
					return err
				}
				if stats == 0 || vm == 0 {
					return fmt.Errorf("%d RTP rows and %d Erlang VM rows, want some of each", stats, vm)
				}
				return nil
			})

			if err := p.Stop(os.Interrupt, time.Minute); err != nil {
				t.Fatalf("run.sh after SIGINT: %v, want a clean exit\n%s", err, p.Output())
			}
			if out := p.Output(); !strings.Contains(out, "kohaku-local: stopped") {
				t.Errorf("run.sh did not say it stopped:\n%s", out)
			}
			for _, pid := range childPIDs(p) {
				if !processGone(pid) {
					t.Errorf("process %d started by run.sh still runs", pid)
				}
			}
			if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after run.sh ended", listen)
			}
		})
	}
}

// postFixtures posts every exporter fixture over h2c, as older Sora does, with the Basic
// credentials of auth if any, wants 204 for each, and returns the sorted connection ids of
// the connection.user-agent ones.
func postFixtures(t *testing.T, collector string, auth sim.ClientOptions) []string {
	t.Helper()
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	auth.Timeout = 10 * time.Second
	client, err := sim.NewClient(collector, auth)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range all {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, collector, bytes.NewReader(f.Body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set(sora.HeaderExporterType, f.ExporterType)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", f.Name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != 2 {
			t.Fatalf("POST %s: %s over %s %s, want 204 over HTTP/2", f.Name, resp.Status, resp.Proto, body)
		}
		if f.ExporterType == sora.TypeUserAgent {
			var env struct {
				ConnectionID string `json:"connection_id"`
			}
			if err := json.Unmarshal(f.Body, &env); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, env.ConnectionID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// postWebhooks posts every stats webhook fixture over HTTP/1.1, as Sora 2025.1 and later
// do, with the Basic credentials of auth if any, wants 204 for each, and returns their
// sorted connection ids.
func postWebhooks(t *testing.T, url string, auth sim.ClientOptions) []string {
	t.Helper()
	all, err := fixtures.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	auth.Timeout, auth.HTTP1 = 10*time.Second, true
	client, err := sim.NewClient(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range all {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(f.Body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set(sora.HeaderWebhookType, sora.TypeConnectionRTC)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", f.Name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.ProtoMajor != 1 {
			t.Fatalf("POST %s: %s over %s %s, want 204 over HTTP/1.1", f.Name, resp.Status, resp.Proto, body)
		}
		var env struct {
			ConnectionID string `json:"connection_id"`
		}
		if err := json.Unmarshal(f.Body, &env); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.ConnectionID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func storedConnections(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT connection_id FROM sora_connection ORDER BY connection_id")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// childPIDs returns the programs that run.sh said it started ("kohaku-writer started (pid N)").
func childPIDs(p *proc.Process) []int {
	var pids []int
	for _, m := range regexp.MustCompile(`started \(pid (\d+)\)`).FindAllStringSubmatch(p.Output(), -1) {
		if pid, err := strconv.Atoi(m[1]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killChildren kills what run.sh started when the test ends early: they run in process
// groups of their own, so killing the script does not end them.
func killChildren(p *proc.Process) {
	for _, pid := range childPIDs(p) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestLocalRunRefuses checks that run.sh names the problem, before building anything, when
// the addresses it was given cannot work.
func TestLocalRunRefuses(t *testing.T) {
	bash := lookPath(t, "bash", "Debian package bash")
	ns := testenv.NATS(t) // a port that is taken, by a NATS server with JetStream
	taken := strings.TrimPrefix(ns.URL(), "nats://")
	closed := proc.FreeAddr(t)
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"one admin address for both", []string{"KOHAKU_ADMIN_LISTEN=:5891"}, "KOHAKU_LOCAL_RECEIVER_ADMIN_LISTEN"},
		{"embedded JetStream on a taken port", []string{"KOHAKU_EMBEDDED_NATS=true", "KOHAKU_EMBEDDED_NATS_LISTEN=" + taken},
			"port " + taken + " for the embedded JetStream (KOHAKU_EMBEDDED_NATS_LISTEN) is taken"},
		{"no NATS at the URL given", []string{"KOHAKU_NATS_URL=nats://" + closed}, "no NATS server answers at " + closed},
		{"external NATS that is not there", []string{"KOHAKU_EMBEDDED_NATS=false", "KOHAKU_NATS_URL=nats://" + closed}, "no NATS server answers"},
		{"bad switch", []string{"KOHAKU_EMBEDDED_NATS=maybe"}, "KOHAKU_EMBEDDED_NATS=maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bash, filepath.Join(root, "deploy/local/run.sh"))
			cmd.Env = proc.CleanEnv("KOHAKU_LOCAL_BIN=" + t.TempDir())
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("run.sh succeeded, want a refusal:\n%s", out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("run.sh says\n%s\nwant it to mention %q", out, tt.want)
			}
			if strings.Contains(string(out), "building") {
				t.Errorf("run.sh built before refusing:\n%s", out)
			}
		})
	}
}
