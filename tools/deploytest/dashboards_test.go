package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"kohaku/testsupport/dbtest"
)

// wantDashboards are the dashboard files and their stable uids, which links and
// bookmarks use.
var wantDashboards = map[string]string{
	"call-quality.json": "kohaku-call-quality",
	"connections.json":  "kohaku-connections",
	"connection.json":   "kohaku-connection",
	"pipeline.json":     "kohaku-pipeline",
}

func TestDashboardsAreTheFourWithStableUIDs(t *testing.T) {
	got := map[string]string{}
	for _, d := range loadDashboards(t) {
		got[d.file] = d.UID
		if d.Title == "" || d.Description == "" {
			t.Errorf("%s has no title or description", d.file)
		}
		// Grafana migrates older models on load, and a provisioned dashboard cannot be
		// saved, so an old model would be migrated again on every load.
		if d.SchemaVersion < 39 {
			t.Errorf("%s: schemaVersion %d, want 39 or newer (Grafana 10.4+)", d.file, d.SchemaVersion)
		}
	}
	if !maps.Equal(got, wantDashboards) {
		t.Errorf("dashboards (file: uid) %v, want %v", got, wantDashboards)
	}
}

func TestDashboardPanelsAreDescribedAndUseProvisionedDatasources(t *testing.T) {
	dss := provisionedDatasources(t)
	for _, uid := range []string{postgresUID, prometheusUID} {
		if dss[uid] == "" {
			t.Fatalf("data source %s is not provisioned", uid)
		}
	}
	for _, d := range loadDashboards(t) {
		ids := map[int]bool{}
		for _, p := range d.allPanels() {
			where := d.file + ": panel " + fmt.Sprintf("%d %q", p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: id used twice", where)
			}
			ids[p.ID] = true
			if p.Title == "" {
				t.Errorf("%s has no title", where)
			}
			if p.Type == "row" {
				continue
			}
			if p.Description == "" {
				t.Errorf("%s has no description", where)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s has no unit", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s has no query", where)
			}
		}
		for _, pt := range d.targets() {
			where := d.file + ": " + pt.name()
			if typ, ok := dss[pt.ds.UID]; !ok || typ != pt.ds.Type {
				t.Errorf("%s: data source %+v is not a provisioned one (uid and type)", where, pt.ds)
			}
			if pt.isSQL() {
				if pt.target.RawSQL == "" || !pt.target.RawQuery || pt.target.EditorMode != "code" {
					t.Errorf("%s: a SQL target needs rawSql with rawQuery true and editorMode code, or Grafana's builder rewrites it", where)
				}
				if pt.target.Format != "table" && pt.target.Format != "time_series" {
					t.Errorf("%s: format %q, want table or time_series", where, pt.target.Format)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && (v.Datasource == nil || dss[v.Datasource.UID] != v.Datasource.Type) {
				t.Errorf("%s: variable %s does not use a provisioned data source", d.file, v.Name)
			}
		}
	}
}

// dashboardLink is a link to a Grafana dashboard: /d/<uid>?var-<name>=...
var dashboardLink = regexp.MustCompile(`^/d/([^/?]+)(?:/[^?]*)?(?:\?(.*))?$`)

func TestDashboardLinksReachExistingDashboardsAndVariables(t *testing.T) {
	ds := loadDashboards(t)
	byUID := map[string]grafanaDashboard{}
	for _, d := range ds {
		byUID[d.UID] = d
	}
	for _, d := range ds {
		var urls []string
		for _, l := range d.Links {
			urls = append(urls, l.URL)
		}
		for _, p := range d.allPanels() {
			for _, l := range p.FieldConfig.Defaults.Links {
				urls = append(urls, l.URL)
			}
			for _, o := range p.FieldConfig.Overrides {
				for _, prop := range o.Properties {
					var ls []grafanaLink
					if prop.ID == "links" && json.Unmarshal(prop.Value, &ls) == nil {
						for _, l := range ls {
							urls = append(urls, l.URL)
						}
					}
				}
			}
		}
		for _, u := range urls {
			m := dashboardLink.FindStringSubmatch(u)
			if m == nil {
				t.Errorf("%s: link %q is not a dashboard link", d.file, u)
				continue
			}
			target, ok := byUID[m[1]]
			if !ok {
				t.Errorf("%s: link %q goes to no dashboard", d.file, u)
				continue
			}
			for _, kv := range strings.Split(m[2], "&") {
				name, ok := strings.CutPrefix(strings.SplitN(kv, "=", 2)[0], "var-")
				if !ok {
					continue
				}
				if _, ok := target.variable(name); !ok {
					t.Errorf("%s: link %q sets variable %s, which %s does not have", d.file, u, name, target.file)
				}
			}
		}
	}
	// Each connection of the list opens its own detail.
	list := byUID["kohaku-connections"]
	linked := slices.ContainsFunc(list.allPanels(), func(p grafanaPanel) bool {
		return p.Type == "table" && p.hasLink("Connection", "/d/kohaku-connection?var-connection_id=${__value.raw}")
	})
	if !linked {
		t.Error("the Connections table does not link its Connection column to /d/kohaku-connection?var-connection_id=${__value.raw}")
	}
	if _, ok := byUID["kohaku-connection"].variable("connection_id"); !ok {
		t.Error("the Connection dashboard has no connection_id variable")
	}
}

// TestDashboardSQLQueriesReturnRows runs every SQL query of the dashboards, panels and
// template variables, against a database filled from the fixtures, with Grafana's macros and
// variables expanded for a time range around the fixtures: each must run and return rows.
// Dashboards with variables that can hold several values run twice, with every value and
// with the first one only.
func TestDashboardSQLQueriesReturnRows(t *testing.T) {
	dashboards := loadDashboards(t)
	conn, err := pgx.Connect(t.Context(), dbtest.Database(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	span := fillFromFixtures(t, conn)

	// The fixtures' messages span a few seconds of one minute and a node report a few
	// minutes later; the dashboard shows them with a quarter of an hour on each side.
	from, to := span.first.Add(-15*time.Minute), span.last.Add(15*time.Minute)
	base := queryContext{from: from, to: to, interval: panelInterval(from, to, postgresMinInterval(t))}

	queries := 0
	for _, d := range dashboards {
		modes := []valueMode{everyValue}
		if slices.ContainsFunc(d.Templating.List, func(v grafanaVariable) bool { return v.Multi || v.IncludeAll }) {
			modes = append(modes, firstValue)
		}
		for _, mode := range modes {
			t.Run(d.UID+"/"+mode.String(), func(t *testing.T) {
				qc := resolveVariables(t, conn, base, d, mode)
				for _, pt := range d.targets() {
					if !pt.isSQL() {
						continue
					}
					queries++
					t.Run(pt.name(), func(t *testing.T) {
						res := runPanelQuery(t, conn, qc, pt.target.RawSQL)
						checkShape(t, res, pt.target.Format)
					})
				}
			})
		}
	}
	if queries == 0 {
		t.Error("the dashboards have no SQL query")
	}
}

// postgresMinInterval is the PostgreSQL data source's minimum interval (timeInterval).
func postgresMinInterval(t testing.TB) time.Duration {
	t.Helper()
	var cfg struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			JSONData struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/kohaku.yml", &cfg)
	for _, ds := range cfg.Datasources {
		if ds.UID == postgresUID && ds.JSONData.TimeInterval != "" {
			d, err := parseInterval(ds.JSONData.TimeInterval)
			if err != nil {
				t.Fatalf("timeInterval of %s: %v", postgresUID, err)
			}
			return d
		}
	}
	return time.Second // Grafana's default when none is set
}

// valueMode chooses which options a test gives the template variables.
type valueMode int

const (
	// everyValue selects All (or every option) where a variable allows several values,
	// the first option elsewhere: the dashboards' defaults.
	everyValue valueMode = iota
	// firstValue selects the first option of every variable.
	firstValue
)

func (m valueMode) String() string {
	if m == firstValue {
		return "first_value"
	}
	return "every_value"
}

// resolveVariables gives every template variable of d a value, in order, as Grafana does
// when it loads the dashboard: a query variable's options come from running its query
// (which must return rows) with the variables before it.
func resolveVariables(t testing.TB, conn *pgx.Conn, qc queryContext, d grafanaDashboard, mode valueMode) queryContext {
	t.Helper()
	qc.vars = map[string]variableValue{}
	for _, v := range d.Templating.List {
		var options []string
		switch v.Type {
		case "query":
			if v.Datasource == nil || v.Datasource.UID != postgresUID {
				t.Fatalf("variable %s: only query variables of %s are supported by this test", v.Name, postgresUID)
			}
			res := runPanelQuery(t, conn, qc, v.sql())
			// Grafana takes the value from a column named __value, else the first.
			col := max(slices.Index(res.columns, "__value"), 0)
			for _, r := range res.rows {
				options = append(options, fmt.Sprint(r[col]))
			}
		case "custom":
			for _, o := range strings.Split(v.sql(), ",") {
				options = append(options, strings.TrimSpace(o))
			}
		case "constant", "textbox":
			options = []string{v.sql()}
		default:
			t.Fatalf("variable %s: type %q is not supported by this test", v.Name, v.Type)
		}
		val := variableValue{values: options[:1], list: v.Multi || v.IncludeAll}
		if mode == everyValue && val.list {
			val.values = options
			if v.IncludeAll && v.AllValue != "" {
				val.allValue = &v.AllValue
			}
		}
		qc.vars[v.Name] = val
	}
	return qc
}

// queryResult is what a query returned.
type queryResult struct {
	sql     string // as run
	columns []string
	oids    []uint32
	rows    [][]any
}

// runPanelQuery expands sql for qc and runs it as Grafana's PostgreSQL data source does
// (simple protocol, no parameters). It fails the test when the query fails or returns no
// row.
func runPanelQuery(t testing.TB, conn *pgx.Conn, qc queryContext, sql string) queryResult {
	t.Helper()
	if strings.TrimSpace(sql) == "" {
		t.Fatal("empty query")
	}
	expanded, err := qc.expand(sql)
	if err != nil {
		t.Fatalf("expand: %v\n%s", err, sql)
	}
	res := queryResult{sql: expanded}
	rows, err := conn.Query(t.Context(), expanded, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, expanded)
	}
	for _, fd := range rows.FieldDescriptions() {
		res.columns = append(res.columns, fd.Name)
		res.oids = append(res.oids, fd.DataTypeOID)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("read row: %v\n%s", err, expanded)
		}
		res.rows = append(res.rows, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query: %v\n%s", err, expanded)
	}
	if len(res.rows) == 0 {
		t.Fatalf("no rows from the fixtures\n%s", expanded)
	}
	return res
}

// checkShape checks that Grafana can turn res into the panel's frames: every column of a
// type that its PostgreSQL driver decodes; for time series a time column in ascending
// order (Grafana's conversion of long to wide frames requires it) and numeric values,
// each column with at least one value.
func checkShape(t testing.TB, res queryResult, format string) {
	t.Helper()
	types := pgtype.NewMap()
	for i, oid := range res.oids {
		if _, ok := types.TypeForOID(oid); !ok {
			t.Errorf("column %s has type oid %d, which Grafana's driver does not know; cast it\n%s", res.columns[i], oid, res.sql)
		}
	}
	if format != "time_series" {
		return
	}
	timeCol := slices.Index(res.columns, "time")
	if timeCol < 0 {
		t.Fatalf("a time series query needs a column named time, got %v\n%s", res.columns, res.sql)
	}
	var prev time.Time
	for _, r := range res.rows {
		at, ok := r[timeCol].(time.Time)
		if !ok {
			t.Fatalf("time is %T, want a timestamp\n%s", r[timeCol], res.sql)
		}
		if at.Before(prev) {
			t.Fatalf("rows are not in ascending time order (%s after %s): ORDER BY time\n%s", at, prev, res.sql)
		}
		prev = at
	}
	values := 0
	for i, name := range res.columns {
		if i == timeCol || res.oids[i] == pgtype.TextOID || res.oids[i] == pgtype.VarcharOID {
			continue // string columns name the series
		}
		values++
		if !slices.ContainsFunc(res.rows, func(r []any) bool { return r[i] != nil }) {
			t.Errorf("value column %s is NULL in every row\n%s", name, res.sql)
		}
	}
	if values == 0 {
		t.Errorf("no value column besides time and series names\n%s", res.sql)
	}
}

// TestDashboardPrometheusQueriesUseServiceMetrics checks that every Prometheus query of the
// dashboards is set and asks only for metrics that the receiver or the writer defines in
// its metrics.go files, so that a renamed metric cannot leave an empty panel.
func TestDashboardPrometheusQueriesUseServiceMetrics(t *testing.T) {
	known := serviceMetrics(t)
	queries := 0
	for _, d := range loadDashboards(t) {
		for _, pt := range d.targets() {
			if !pt.isProm() {
				continue
			}
			queries++
			where := d.file + ": " + pt.name()
			if strings.TrimSpace(pt.target.Expr) == "" {
				t.Errorf("%s: empty expr", where)
				continue
			}
			names := promMetricNames(pt.target.Expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", where, pt.target.Expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("%s: metric %s is not defined in any service's metrics.go (expr %q)", where, n, pt.target.Expr)
				}
			}
		}
	}
	if queries == 0 {
		t.Error("the dashboards have no Prometheus query")
	}
}
