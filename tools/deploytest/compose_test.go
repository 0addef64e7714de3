package deploytest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository root, relative to this package.
const root = "../.."

// loadProject parses docker-compose.yml as docker compose would, with an empty environment
// so that only the file's own defaults apply.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithName("kohaku"))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func TestComposeServices(t *testing.T) {
	p := loadProject(t)
	want := []string{"grafana", "lb", "migrate", "nats", "prometheus", "receiver", "timescaledb", "writer"}
	if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
}

func TestComposeReplicas(t *testing.T) {
	p := loadProject(t)
	for name, want := range map[string]int{"writer": 2, "receiver": 3} {
		s := service(t, p, name)
		if s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas != want {
			t.Errorf("%s: deploy.replicas is not %d", name, want)
		}
		if s.ContainerName != "" {
			t.Errorf("%s: container_name %q prevents replicas", name, s.ContainerName)
		}
		for _, port := range s.Ports {
			if port.Published != "" {
				t.Errorf("%s: publishes port %s, which replicas cannot share; traffic goes through lb", name, port.Published)
			}
		}
	}
}

func TestComposePublishedPorts(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service string
		port    uint32
	}{
		{"lb", 5890}, // Sora's stats_collector_url
		{"grafana", 3000},
		{"prometheus", 9090},
	}
	for _, tt := range tests {
		s := service(t, p, tt.service)
		if !slices.ContainsFunc(s.Ports, func(pc types.ServicePortConfig) bool {
			return pc.Target == tt.port && pc.Published == strconv.Itoa(int(tt.port))
		}) {
			t.Errorf("%s does not publish %d:%d (ports %+v)", tt.service, tt.port, tt.port, s.Ports)
		}
	}
}

func TestComposeStartOrder(t *testing.T) {
	p := loadProject(t)
	tests := []struct {
		service, dependency, condition string
	}{
		{"migrate", "timescaledb", types.ServiceConditionHealthy},
		{"writer", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"writer", "nats", types.ServiceConditionHealthy},
		{"receiver", "nats", types.ServiceConditionHealthy},
		{"lb", "receiver", types.ServiceConditionStarted},
		{"grafana", "timescaledb", types.ServiceConditionHealthy},
	}
	for _, tt := range tests {
		dep, ok := service(t, p, tt.service).DependsOn[tt.dependency]
		if !ok {
			t.Errorf("%s does not depend on %s", tt.service, tt.dependency)
			continue
		}
		if dep.Condition != tt.condition {
			t.Errorf("%s depends on %s with condition %q, want %q", tt.service, tt.dependency, dep.Condition, tt.condition)
		}
	}
	// A healthy condition needs a health check to become true.
	for _, name := range []string{"timescaledb", "nats"} {
		hc := service(t, p, name).HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s has no health check, but services wait for it to be healthy", name)
		}
	}
	if hc := service(t, p, "timescaledb").HealthCheck; hc != nil && !slices.Contains(hc.Test, "pg_isready") {
		t.Errorf("timescaledb health check %v does not use pg_isready", hc.Test)
	}
	if m := service(t, p, "migrate"); m.Restart != "no" || !slices.Equal(m.Command, types.ShellCommand{"migrate"}) {
		t.Errorf("migrate: restart %q, command %v; want it to run kohaku-writer migrate once", m.Restart, m.Command)
	}
}

func TestComposeImages(t *testing.T) {
	p := loadProject(t)
	for name, target := range map[string]string{"receiver": "receiver", "writer": "writer", "migrate": "writer"} {
		s := service(t, p, name)
		if s.Build == nil {
			t.Errorf("%s is not built from the repository", name)
			continue
		}
		if s.Build.Target != target || filepath.Base(s.Build.Dockerfile) != "Dockerfile" {
			t.Errorf("%s: built from %s target %q, want deploy/Dockerfile target %q", name, s.Build.Dockerfile, s.Build.Target, target)
		}
		df, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(df), " AS "+target+"\n") {
			t.Errorf("deploy/Dockerfile has no stage %q", target)
		}
	}
	if w, m := service(t, p, "writer"), service(t, p, "migrate"); w.Image != m.Image {
		t.Errorf("migrate runs image %q, writer %q: the migrations must be the writer's own", m.Image, w.Image)
	}
}

func TestComposeEnvironment(t *testing.T) {
	p := loadProject(t)
	const (
		natsURL = "nats://nats:4222"
		dbURL   = "postgres://postgres:kohaku@timescaledb:5432/kohaku?sslmode=disable"
	)
	common := map[string]string{"KOHAKU_NATS_URL": natsURL, "KOHAKU_STREAM_REPLICAS": "1", "KOHAKU_LOG_FORMAT": "json"}
	want := map[string]map[string]string{
		"receiver": common,
		"writer":   with(common, "KOHAKU_DATABASE_URL", dbURL),
		"migrate":  with(common, "KOHAKU_DATABASE_URL", dbURL),
	}
	for name, vars := range want {
		env := service(t, p, name).Environment
		for k, v := range vars {
			if got := env[k]; got == nil || *got != v {
				t.Errorf("%s: %s = %s, want %q", name, k, show(got), v)
			}
		}
	}
	// Receivers and writers both create the stream when it is missing: they must describe
	// it alike, or whichever starts first decides.
	recv, wr := service(t, p, "receiver").Environment, service(t, p, "writer").Environment
	for k := range merged(recv, wr) {
		if strings.HasPrefix(k, "KOHAKU_STREAM_") && show(recv[k]) != show(wr[k]) {
			t.Errorf("%s is %s for receivers but %s for writers", k, show(recv[k]), show(wr[k]))
		}
	}
}

func TestComposeMountedFilesExist(t *testing.T) {
	p := loadProject(t)
	mounts := 0
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			mounts++
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which does not exist: %v", s.Name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s writable; configuration is mounted read-only", s.Name, v.Target)
			}
		}
	}
	if mounts == 0 {
		t.Error("no configuration file is mounted")
	}
}

// mountTarget returns where service s mounts the repository path rel, or "".
func mountTarget(t *testing.T, p *types.Project, s, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range service(t, p, s).Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == abs {
			return v.Target
		}
	}
	return ""
}

func with(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

func merged(a, b types.MappingWithEquals) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func show(v *string) string {
	if v == nil {
		return "unset"
	}
	return *v
}
