package deploytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"kohaku/pkg/sora"
	"kohaku/testsupport/dbtest"
	"kohaku/testsupport/fixtures"
	"kohaku/testsupport/proc"
	"kohaku/testsupport/testenv"
)

// Where the alerts live: the rule files, the promtool unit tests of them, and where
// Prometheus reads them in docker-compose.yml.
const (
	rulesDir      = "deploy/prometheus/rules"
	rulesTests    = "deploy/prometheus/rules_test.yml"
	prometheusDir = "/etc/prometheus" // where the prometheus image reads prometheus.yml
)

// alertRule is one rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleFiles returns the rule files of rulesDir, relative to the repository root.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, rulesDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no rule file in %s", rulesDir)
	}
	for i, f := range files {
		files[i] = filepath.ToSlash(strings.TrimPrefix(f, root+string(filepath.Separator)))
	}
	return files
}

// alertRules returns every rule of every rule file, keyed by "file: alert".
func alertRules(t *testing.T) map[string]alertRule {
	t.Helper()
	out := map[string]alertRule{}
	for _, f := range ruleFiles(t) {
		var rf struct {
			Groups []struct {
				Name  string      `yaml:"name"`
				Rules []alertRule `yaml:"rules"`
			} `yaml:"groups"`
		}
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				out[f+": "+r.Alert+r.Record] = r
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no rule in %s", rulesDir)
	}
	return out
}

// TestAlertRulesPassPromtool checks the rules as Prometheus would load them and runs their
// unit tests. In CI promtool must be there: .ci/run installs Debian's prometheus package.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := lookPath(t, "promtool", "Debian package prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{"the configuration loads the rules", []string{"check", "config", "deploy/prometheus/prometheus.yml"}},
		{"every rule file is valid", append([]string{"check", "rules"}, ruleFiles(t)...)},
		{"the alerts fire as their unit tests expect", []string{"test", "rules", rulesTests}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), promtool, tt.args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
		})
	}
}

// TestPrometheusLoadsAlertRules checks that the prometheus service of docker-compose.yml
// mounts the rules where prometheus.yml's rule_files look for them, and that every rule
// file is one of those.
func TestPrometheusLoadsAlertRules(t *testing.T) {
	p := loadProject(t)
	mounted := mountTarget(t, p, "prometheus", rulesDir)
	if mounted == "" {
		t.Fatalf("the prometheus service does not mount %s", rulesDir)
	}
	config := mountTarget(t, p, "prometheus", "deploy/prometheus/prometheus.yml")
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	if len(cfg.RuleFiles) == 0 {
		t.Fatal("prometheus.yml has no rule_files")
	}
	for _, f := range ruleFiles(t) {
		// Inside the container; a relative rule_files entry is relative to prometheus.yml.
		target := path.Join(mounted, path.Base(f))
		found := false
		for _, glob := range cfg.RuleFiles {
			if !path.IsAbs(glob) {
				glob = path.Join(path.Dir(config), glob)
			}
			if ok, err := path.Match(glob, target); err != nil {
				t.Fatalf("rule_files %q: %v", glob, err)
			} else if ok {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is mounted at %s, which no rule_files entry of prometheus.yml (%v) matches", f, target, cfg.RuleFiles)
		}
	}
	if config != path.Join(prometheusDir, "prometheus.yml") {
		t.Errorf("prometheus.yml is mounted at %q, not where the image reads it", config)
	}
}

// TestAlertRulesTellWhatToDo checks that every rule is an alert with a severity, a summary
// and a description, and that the jobs it names are scraped.
func TestAlertRulesTellWhatToDo(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
	}
	jobMatcher := regexp.MustCompile(`\bjob\s*=~?\s*"([^"]*)"`)
	for where, r := range alertRules(t) {
		if r.Alert == "" {
			t.Errorf("%s: a recording rule; the file holds alerts only", where)
			continue
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", where, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", where, a)
			}
		}
		for _, m := range jobMatcher.FindAllStringSubmatch(r.Expr, -1) {
			if !jobs[m[1]] {
				t.Errorf("%s: job %q is not a job_name of prometheus.yml", where, m[1])
			}
		}
	}
}

// TestAlertRulesUseExportedMetrics starts kohaku-receiver and kohaku-writer as processes,
// sends a report with one element that the writer dead-letters (so that the counters with
// labels have a series), and checks that every kohaku_* metric the rules read is on the
// /metrics page of one of them.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	ns := testenv.NATS(t)
	db := dbtest.Database(t)
	receiverBin, writerBin := buildReceiver(t), buildWriter(t)

	listen, receiverAdmin, writerAdmin := proc.FreeAddr(t), proc.FreeAddr(t), proc.FreeAddr(t)
	rcmd := exec.Command(receiverBin)
	rcmd.Env = proc.CleanEnv("KOHAKU_LISTEN="+listen, "KOHAKU_ADMIN_LISTEN="+receiverAdmin,
		"KOHAKU_NATS_URL="+ns.URL(), "KOHAKU_LOG_FORMAT=json")
	receiver := proc.Start(t, "kohaku-receiver", rcmd)
	wcmd := exec.Command(writerBin)
	wcmd.Env = proc.CleanEnv("KOHAKU_NATS_URL="+ns.URL(), "KOHAKU_DATABASE_URL="+db,
		"KOHAKU_ADMIN_LISTEN="+writerAdmin, "KOHAKU_LOG_FORMAT=json")
	writer := proc.Start(t, "kohaku-writer", wcmd)
	if err := receiver.WaitHTTP("http://"+receiverAdmin+"/readyz", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := writer.WaitHTTP("http://"+writerAdmin+"/readyz", time.Minute); err != nil {
		t.Fatal(err)
	}

	body := webhookWithNUL(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+listen+"/stats-webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(sora.HeaderWebhookType, sora.TypeConnectionRTC)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /stats-webhook: %d %s, want 204", resp.StatusCode, answer)
	}
	need := map[string][]string{} // metric name: the rules that read it
	for where, r := range alertRules(t) {
		for _, n := range promMetricNames(r.Expr) {
			if strings.HasPrefix(n, "kohaku_") {
				need[n] = append(need[n], where)
			}
		}
	}
	// The stream series come from looks every few seconds (stream.Monitor), and the one
	// at a writer's start may come before its consumer exists: wait for the next.
	testenv.Eventually(t, 30*time.Second, func() error {
		writerNames, err := scrapeMetricNames("http://" + writerAdmin + "/metrics")
		if err != nil {
			return err
		}
		receiverNames, err := scrapeMetricNames("http://" + receiverAdmin + "/metrics")
		if err != nil {
			return err
		}
		var missing []string
		for n, rules := range need {
			if !receiverNames[n] && !writerNames[n] {
				missing = append(missing, fmt.Sprintf("%s (%s)", n, strings.Join(rules, ", ")))
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("metrics the rules read are on neither the receiver's nor the writer's /metrics: %s", strings.Join(missing, ", "))
		}
		return nil
	})
}

// webhookWithNUL returns the first stats webhook fixture with one more stats element, a
// data channel whose label holds U+0000: the writer stores the report and dead-letters
// that element (reason nul).
func webhookWithNUL(t *testing.T) []byte {
	t.Helper()
	all, err := fixtures.Webhooks()
	if err != nil || len(all) == 0 {
		t.Fatalf("stats webhook fixtures: %d, %v", len(all), err)
	}
	var report map[string]json.RawMessage
	if err := json.Unmarshal(all[0].Body, &report); err != nil {
		t.Fatal(err)
	}
	var stats []json.RawMessage
	if err := json.Unmarshal(report["stats"], &stats); err != nil {
		t.Fatal(err)
	}
	stats = append(stats, json.RawMessage(`{"type":"data-channel","id":"alerts-nul","timestamp":1795932851076.133,"label":"chat\u0000room","state":"open"}`))
	if report["stats"], err = json.Marshal(stats); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scrapeMetricNames returns the names of the series on a Prometheus text page.
func scrapeMetricNames(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("scrape %s: no series", url)
	}
	return names, nil
}

func TestPromMetricNamesReadsAlertExpressions(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"ratio of gauges with a filter", `max without (instance, job) (a_bytes / (a_max_bytes > 0)) > 0.8 or max without (instance, job) (b / (b_max > 0)) > 0.8`,
			[]string{"a_bytes", "a_max_bytes", "b", "b_max"}},
		{"offset and unless", `sum by (reason) (c_total unless c_total offset 10m) > 0`, []string{"c_total"}},
		{"absent of up", `up{job="kohaku-writer"} == 0 or absent(up{job="kohaku-writer"})`, []string{"up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := promMetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("promMetricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}
