package deploytest

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

// receiverMaxBody is the default of the receiver's KOHAKU_MAX_BODY_BYTES, which the NATS
// server's max payload must not lower.
const receiverMaxBody = 4 << 20

func readYAML(t testing.TB, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func TestHAProxyConfigIsValid(t *testing.T) {
	bin := lookPath(t, "haproxy", "Debian's haproxy")
	// The service names in the file resolve only inside Docker; init-addr none lets the
	// check pass without them, as it lets HAProxy start before the receivers.
	out, err := exec.CommandContext(t.Context(), bin, "-c", "-f", filepath.Join(root, "deploy/haproxy/haproxy.cfg")).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

func TestHAProxyConfigMatchesCompose(t *testing.T) {
	p := loadProject(t)
	if got := mountTarget(t, p, "lb", "deploy/haproxy/haproxy.cfg"); got != "/usr/local/etc/haproxy/haproxy.cfg" {
		t.Errorf("lb mounts deploy/haproxy/haproxy.cfg at %q, not where the haproxy image reads it", got)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/haproxy/haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	lines := directives(string(b))
	for _, want := range []string{
		"bind :5890",              // the published port
		"option httpchk GET /.ok", // the receiver's health answer
		"http-check expect status 204",
		"retry-on conn-failure empty-response response-timeout",
		"option redispatch 1",
		"option http-buffer-request", // a retry needs the whole body
		"server-template receiver 1-10 receiver:5890",
		"nameserver docker 127.0.0.11:53",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "default-server ") {
			for _, kw := range []string{" proto h2", " check", " resolvers docker", " init-addr none"} {
				if !strings.Contains(l+" ", kw+" ") {
					t.Errorf("default-server lacks %q: %s", strings.TrimSpace(kw), l)
				}
			}
		}
		// Anything beyond these can replay a request that a receiver may have answered.
		if strings.HasPrefix(l, "retry-on ") && strings.Contains(l, "all-retryable-errors") {
			t.Errorf("retry-on too broad: %s", l)
		}
	}
}

// directives returns the configuration lines of an HAProxy file, trimmed, without comments.
func directives(cfg string) []string {
	var out []string
	for _, l := range strings.Split(cfg, "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestNATSConfig(t *testing.T) {
	p := loadProject(t)
	target := mountTarget(t, p, "nats", "deploy/nats/nats.conf")
	if target == "" {
		t.Fatal("nats does not mount deploy/nats/nats.conf")
	}
	if cmd := service(t, p, "nats").Command; !slices.Contains(cmd, target) {
		t.Errorf("nats runs %v, which does not read %s", cmd, target)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy/nats/nats.conf"))
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !opts.JetStream {
		t.Error("nats.conf does not enable JetStream")
	}
	if opts.MaxPayload < receiverMaxBody {
		t.Errorf("max_payload %d is below the receiver's body limit %d", opts.MaxPayload, receiverMaxBody)
	}
	if opts.HTTPPort != 8222 {
		t.Errorf("monitoring port %d, but the health check asks 8222", opts.HTTPPort)
	}
	var onVolume bool
	for _, v := range service(t, p, "nats").Volumes {
		onVolume = onVolume || v.Type == "volume" && v.Target == opts.StoreDir
	}
	if !onVolume {
		t.Errorf("JetStream store_dir %s is not a named volume: the stream would not survive the container", opts.StoreDir)
	}
	maxBytes, err := strconv.ParseInt(show(service(t, p, "receiver").Environment["KOHAKU_STREAM_MAX_BYTES"]), 10, 64)
	if err != nil {
		t.Fatalf("KOHAKU_STREAM_MAX_BYTES: %v", err)
	}
	if opts.JetStreamMaxStore < maxBytes {
		t.Errorf("max_file_store %d is below KOHAKU_STREAM_MAX_BYTES %d: the stream could not be created", opts.JetStreamMaxStore, maxBytes)
	}
}

func TestPrometheusScrapesAdminPorts(t *testing.T) {
	p := loadProject(t)
	if got := mountTarget(t, p, "prometheus", "deploy/prometheus/prometheus.yml"); got != "/etc/prometheus/prometheus.yml" {
		t.Errorf("prometheus mounts its configuration at %q, not where the image reads it", got)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	want := map[string]int{"receiver": 5891, "writer": 5892} // the admin ports of DESIGN.md section 5
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			for _, name := range sd.Names {
				if _, err := p.GetService(name); err != nil {
					t.Errorf("job %s discovers %q, which is no compose service", sc.JobName, name)
				}
				if port, ok := want[name]; ok && sd.Port == port && sd.Type == "A" {
					delete(want, name)
				}
			}
		}
	}
	for name, port := range want {
		t.Errorf("no job scrapes every %s replica on %d (dns_sd_configs type A)", name, port)
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	p := loadProject(t)
	provisioning := mountTarget(t, p, "grafana", "deploy/grafana/provisioning")
	if provisioning != "/etc/grafana/provisioning" {
		t.Errorf("grafana mounts deploy/grafana/provisioning at %q, not where Grafana reads it", provisioning)
	}
	var ds struct {
		Datasources []struct {
			Name, UID, Type, URL, User string
			JSONData                   map[string]any    `yaml:"jsonData"`
			SecureJSONData             map[string]string `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/kohaku.yml", &ds)
	found := map[string]bool{}
	for _, d := range ds.Datasources {
		found[d.UID] = true
		switch d.UID {
		case "kohaku-postgres":
			if d.Name != "Kohaku" || d.Type != "grafana-postgresql-datasource" || d.URL != "timescaledb:5432" || d.JSONData["database"] != "kohaku" {
				t.Errorf("Kohaku data source %+v does not read the kohaku database of timescaledb", d)
			}
			// The password comes from an environment variable that grafana must have.
			if v, ok := strings.CutPrefix(d.SecureJSONData["password"], "$"); ok {
				if service(t, p, "grafana").Environment[strings.Trim(v, "{}")] == nil {
					t.Errorf("data source password reads $%s, which grafana's environment lacks", v)
				}
			}
		case "kohaku-prometheus":
			u, err := url.Parse(d.URL)
			if err != nil || u.Hostname() != "prometheus" || u.Port() != "9090" {
				t.Errorf("Prometheus data source URL %q is not the prometheus service", d.URL)
			}
		}
	}
	for _, uid := range []string{"kohaku-postgres", "kohaku-prometheus"} {
		if !found[uid] {
			t.Errorf("no data source with uid %s", uid)
		}
	}

	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/kohaku.yml", &dash)
	mounted := mountTarget(t, p, "grafana", "deploy/grafana/dashboards")
	if len(dash.Providers) == 0 || mounted == "" || dash.Providers[0].Options.Path != mounted {
		t.Errorf("dashboards provider reads %+v but deploy/grafana/dashboards is mounted at %q", dash.Providers, mounted)
	}
}
