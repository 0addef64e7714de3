package proc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv names what the test binary does when it runs as the child of a test: the tests
// re-execute their own binary, so that they need no build of another program.
const childEnv = "PROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(child(role))
	}
	os.Exit(m.Run())
}

// child plays the program named by role and returns its exit status.
func child(role string) int {
	switch role {
	case "server": // logs, serves /readyz and exits 0 on SIGTERM, as Kohaku's services do
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ready")) })
		go http.Serve(ln, mux)
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("not JSON")
		fmt.Fprintln(os.Stderr, `{"level":"INFO","msg":"starting"}`)
		fmt.Fprintf(os.Stderr, `{"level":"INFO","msg":"listening","addr":%q}`+"\n", ln.Addr())
		<-term
		fmt.Fprintln(os.Stderr, `{"level":"INFO","msg":"stopped"}`)
		return 0
	case "stubborn": // ignores SIGTERM, as a hung program would
		signal.Ignore(syscall.SIGTERM)
		fmt.Println(`{"level":"INFO","msg":"ignoring SIGTERM"}`)
		time.Sleep(time.Hour)
		return 0
	case "exit": // writes to both streams and stdin's first line, and exits with $PROC_TEST_STATUS
		var in string
		fmt.Fscanln(os.Stdin, &in)
		fmt.Println("out", in)
		fmt.Fprintln(os.Stderr, "err")
		status, _ := strconv.Atoi(os.Getenv("PROC_TEST_STATUS"))
		return status
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// command returns a command that runs the test binary as the child role, with env added.
func command(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	// Under -race a program sleeps a second at exit, by default, to let reports finish.
	cmd.Env = append(CleanEnv(childEnv+"="+role, "GORACE=atexit_sleep_ms=0"), env...)
	return cmd
}

// listening returns the address the server child logged.
func listening(t *testing.T, p *Process) string {
	t.Helper()
	var l struct{ Addr string }
	if err := p.WaitLog("listening", &l, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return l.Addr
}

func TestWaits(t *testing.T) {
	tests := []struct {
		name string
		role string
		env  []string
		wait func(t *testing.T, p *Process) error
		// want is "" for success, "timeout" for a *TimeoutError, "ended" for an error that
		// wraps the exit error (or names status 0), "exit" for an *exec.ExitError alone.
		want       string
		wantExited bool
	}{
		{name: "log line", role: "server", wait: func(t *testing.T, p *Process) error {
			if addr := listening(t, p); !strings.HasPrefix(addr, "127.0.0.1:") {
				return fmt.Errorf("decoded addr %q", addr)
			}
			return nil
		}},
		{name: "HTTP readiness", role: "server", wait: func(t *testing.T, p *Process) error {
			return p.WaitHTTP("http://"+listening(t, p)+"/readyz", 10*time.Second)
		}},
		{name: "TCP readiness", role: "server", wait: func(t *testing.T, p *Process) error {
			return p.WaitTCP(listening(t, p), 10*time.Second)
		}},
		{name: "HTTP not 2xx", role: "server", want: "timeout", wait: func(t *testing.T, p *Process) error {
			return p.WaitHTTP("http://"+listening(t, p)+"/absent", 100*time.Millisecond)
		}},
		{name: "log line that never comes", role: "stubborn", want: "timeout", wait: func(t *testing.T, p *Process) error {
			return p.WaitLog("listening", new(any), 100*time.Millisecond)
		}},
		{name: "program ends before its log line", role: "exit", env: []string{"PROC_TEST_STATUS=3"}, want: "ended",
			wantExited: true, wait: func(t *testing.T, p *Process) error {
				return p.WaitLog("listening", new(any), 30*time.Second)
			}},
		{name: "program ends well before it is ready", role: "exit", want: "ended", wantExited: true,
			wait: func(t *testing.T, p *Process) error {
				return p.WaitTCP("127.0.0.1:1", 30*time.Second)
			}},
		{name: "exit status", role: "exit", env: []string{"PROC_TEST_STATUS=3"}, want: "exit", wantExited: true,
			wait: func(t *testing.T, p *Process) error { return p.Wait(30 * time.Second) }},
		{name: "exit status 0", role: "exit", wantExited: true,
			wait: func(t *testing.T, p *Process) error { return p.Wait(30 * time.Second) }},
		{name: "no exit in time", role: "stubborn", want: "timeout",
			wait: func(t *testing.T, p *Process) error { return p.Wait(100 * time.Millisecond) }},
		{name: "clean stop", role: "server", wantExited: true, wait: func(t *testing.T, p *Process) error {
			listening(t, p) // the signal handler is in place
			return p.Stop(syscall.SIGTERM, 30*time.Second)
		}},
		{name: "stop of an ended program", role: "exit", wantExited: true, wait: func(t *testing.T, p *Process) error {
			<-p.Done()
			return p.Stop(syscall.SIGTERM, 30*time.Second)
		}},
		{name: "stop that kills", role: "stubborn", want: "timeout", wantExited: true, wait: func(t *testing.T, p *Process) error {
			if err := p.WaitLog("ignoring SIGTERM", new(any), 30*time.Second); err != nil {
				return err
			}
			return p.Stop(syscall.SIGTERM, 100*time.Millisecond)
		}},
		{name: "kill", role: "stubborn", wantExited: true, wait: func(t *testing.T, p *Process) error {
			if err := p.Kill(); err != nil {
				return err
			}
			if err := p.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
				return fmt.Errorf("exit error %v, want killed", err)
			}
			return p.Kill() // again: nothing to do
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Start(t, tc.role, command(t, tc.role, tc.env...))
			err := tc.wait(t, p)
			var te *TimeoutError
			var exit *exec.ExitError
			switch tc.want {
			case "":
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
			case "timeout":
				if !errors.As(err, &te) || te.Name != tc.role {
					t.Fatalf("got %v, want a *TimeoutError of %s", err, tc.role)
				}
			case "ended":
				if err == nil || !strings.Contains(err.Error(), "it ended") {
					t.Fatalf("got %v, want an error saying the program ended", err)
				}
				if p.Err() != nil && !errors.Is(err, p.Err()) {
					t.Errorf("got %v, want it to wrap the exit error %v", err, p.Err())
				}
			case "exit":
				if !errors.As(err, &exit) || exit.ExitCode() != 3 {
					t.Fatalf("got %v, want exit status 3", err)
				}
			}
			if got := p.Exited(); got != tc.wantExited {
				t.Errorf("Exited() = %v, want %v", got, tc.wantExited)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	tests := []struct {
		name      string
		setStdout bool // the caller sends standard output elsewhere
		want      string
	}{
		{"both streams kept", false, "out hi\nerr\n"},
		{"standard output sent elsewhere", true, "err\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, "exit")
			cmd.Stdin = strings.NewReader("hi\n")
			var elsewhere strings.Builder
			if tc.setStdout {
				cmd.Stdout = &elsewhere
			}
			p := Start(t, "exit", cmd)
			if err := p.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if got := p.Output(); got != tc.want {
				t.Errorf("Output() = %q, want %q", got, tc.want)
			}
			if tc.setStdout && elsewhere.String() != "out hi\n" {
				t.Errorf("standard output %q, want %q", elsewhere.String(), "out hi\n")
			}
		})
	}
}

func TestStartKillsAtTheEnd(t *testing.T) {
	var p *Process
	t.Run("test that leaves its program running", func(t *testing.T) {
		p = Start(t, "stubborn", command(t, "stubborn"))
	})
	if !p.Exited() {
		t.Error("the program still runs after its test ended")
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("KOHAKU_LISTEN", ":1")
	t.Setenv("KOHAKU_TEST_DATABASE_URL", "postgres://test")
	t.Setenv("PROC_TEST_OTHER", "kept")
	env := CleanEnv("KOHAKU_LOG_FORMAT=json", "KOHAKU_LISTEN=:2")
	tests := []struct {
		name string
		kv   string
		want bool
	}{
		{"developer's setting", "KOHAKU_LISTEN=:1", false},
		{"tests' own setting", "KOHAKU_TEST_DATABASE_URL=postgres://test", true},
		{"other variable", "PROC_TEST_OTHER=kept", true},
		{"added setting", "KOHAKU_LOG_FORMAT=json", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := slices.Contains(env, tc.kv); got != tc.want {
				t.Errorf("%s in CleanEnv: %v, want %v", tc.kv, got, tc.want)
			}
		})
	}
	if env[len(env)-1] != "KOHAKU_LISTEN=:2" {
		t.Errorf("CleanEnv ends with %q, want the added entries last", env[len(env)-1])
	}
}

func TestBinary(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		wantErr string // "" builds
	}{
		{"main package", "./testdata/hello", ""},
		{"missing package", "./testdata/absent", "build absent: go build: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Binary{Name: tc.pkg[strings.LastIndexByte(tc.pkg, '/')+1:], Pkg: tc.pkg}
			t.Cleanup(func() {
				if err := b.Remove(); err != nil {
					t.Error(err)
				}
			})
			paths := make(chan string, 3)
			errs := make(chan error, 3)
			for range 3 { // concurrent first uses build once
				go func() {
					path, err := b.Build()
					paths <- path
					errs <- err
				}()
			}
			path, err := <-paths, <-errs
			for range 2 {
				if p, e := <-paths, <-errs; p != path || fmt.Sprint(e) != fmt.Sprint(err) {
					t.Errorf("Build returned %q, %v and %q, %v", path, err, p, e)
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(b.Path(t))
			cmd.Env = CleanEnv("HELLO_NAME=proc")
			p := Start(t, b.Name, cmd)
			if err := p.Wait(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			if got := p.Output(); got != "hello, proc\n" {
				t.Errorf("the program wrote %q", got)
			}
			if err := b.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Remove: %v, want the program gone", err)
			}
		})
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}

// A port of the ephemeral range can be taken by any outgoing connection before the
// program listens on it (CI saw it happen); below the range only a listener can.
func TestFreeAddrIsBelowTheEphemeralRange(t *testing.T) {
	lo, ok := ephemeralLow()
	if !ok {
		t.Fatalf("%s cannot be read: FreeAddr lets the kernel pick ports from that range", ephemeralRange)
	}
	seen := map[string]bool{}
	for range 20 {
		addr := FreeAddr(t)
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatal(err)
		}
		if port < pickFloor || port >= lo {
			t.Errorf("FreeAddr gave %s, want a port in [%d, %d)", addr, pickFloor, lo)
		}
		seen[addr] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 calls gave %d addresses, want random picks that rarely repeat", len(seen))
	}
}

// A port a listener holds is never given.
func TestFreeAddrSkipsAPortInUse(t *testing.T) {
	held := map[string]bool{}
	for range 200 {
		l, err := net.Listen("tcp", FreeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		held[l.Addr().String()] = true
	}
	for range 200 {
		if addr := FreeAddr(t); held[addr] {
			t.Fatalf("FreeAddr gave %s, which a listener holds", addr)
		}
	}
}
