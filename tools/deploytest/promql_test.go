package deploytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricsSources are where the services define their Prometheus metrics: every metrics.go
// below these directories.
var metricsSources = []string{"receiver/internal", "writer/internal"}

// metricDefinition finds a metric's options literal in Go source: the kind of metric and
// its full name, e.g. prometheus.HistogramOpts{Name: "kohaku_writer_flush_seconds", ...}.
var metricDefinition = regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{[^{}]*?\bName:\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

// serviceMetrics returns the names of the series that the services expose: each metric's
// name, and for histograms and summaries the series Prometheus derives from it.
func serviceMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	files := 0
	for _, dir := range metricsSources {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "metrics.go" {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, m := range metricDefinition.FindAllStringSubmatch(string(b), -1) {
				for _, n := range seriesOf(m[1], m[2]) {
					known[n] = true
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read metrics of %s: %v", dir, err)
		}
	}
	if files == 0 || len(known) == 0 {
		t.Fatalf("no metric definition found in the metrics.go files under %v", metricsSources)
	}
	return known
}

// seriesOf returns the series names of a metric of the given kind.
func seriesOf(kind, name string) []string {
	switch kind {
	case "Histogram":
		return []string{name, name + "_bucket", name + "_sum", name + "_count"}
	case "Summary":
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// Parts of a PromQL expression that hold no metric name.
var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promCall     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\s*\(`)
	promToken    = regexp.MustCompile(`\$?[A-Za-z0-9_:.]+`)
)

// promKeywords are PromQL words that are not metric names.
var promKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}

// promMetricNames returns the metric names that expr selects, in order, once each. It reads
// the expressions of dashboards, not every PromQL: strings, label matchers, ranges,
// grouping clauses and calls are dropped, and what is left that is neither a number, a
// keyword nor a Grafana variable is a metric name.
func promMetricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promCall.ReplaceAllString(s, " ")
	var out []string
	for _, tok := range promToken.FindAllString(s, -1) {
		switch {
		case strings.HasPrefix(tok, "$"), tok[0] >= '0' && tok[0] <= '9', tok[0] == '.',
			slices.Contains(promKeywords, strings.ToLower(tok)), slices.Contains(out, tok):
			continue
		}
		out = append(out, tok)
	}
	return out
}

func TestPromMetricNamesFindsSelectorsOnly(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"bare selector", `kohaku_writer_stalled`, []string{"kohaku_writer_stalled"}},
		{"label matchers and range", `rate(kohaku_receiver_requests_total{code="503", exporter_type=~"conn.*"}[$__rate_interval])`, []string{"kohaku_receiver_requests_total"}},
		{"grouping clause", `sum by (code, le) (rate(a_total[5m]))`, []string{"a_total"}},
		{"grouping after the call", `sum(rate(a_total[5m])) without (instance)`, []string{"a_total"}},
		{"histogram quantile with number", `histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[1m])))`, []string{"x_seconds_bucket"}},
		{"binary operation with keywords", `a / on (job) group_left b > bool 0.5 or c offset 5m`, []string{"a", "b", "c"}},
		{"comparison with number", `count(kohaku_writer_database_up == 0)`, []string{"kohaku_writer_database_up"}},
		{"repeated metric once", `x_sum / x_count + x_sum`, []string{"x_sum", "x_count"}},
		{"subquery", `max_over_time(rate(y_total[1m])[10m:1m])`, []string{"y_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := promMetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("promMetricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestMetricDefinitionReadsEveryKind(t *testing.T) {
	src := `
	f.NewCounterVec(prometheus.CounterOpts{
		Name: "a_total",
		Help: "x",
	}, []string{"code"})
	f.NewHistogram(prometheus.HistogramOpts{Name: "b_seconds", Buckets: prometheus.DefBuckets})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Help: "help first",
		Name: "c",
	}, nil)
	f.NewSummary(prometheus.SummaryOpts{Name: "d_bytes"})`
	var got []string
	for _, m := range metricDefinition.FindAllStringSubmatch(src, -1) {
		got = append(got, seriesOf(m[1], m[2])...)
	}
	want := []string{"a_total", "b_seconds", "b_seconds_bucket", "b_seconds_sum", "b_seconds_count", "c", "d_bytes", "d_bytes_sum", "d_bytes_count"}
	if !slices.Equal(got, want) {
		t.Errorf("series %v, want %v", got, want)
	}
}
