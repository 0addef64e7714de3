package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The parts of Grafana's dashboard JSON model that the tests read.

// grafanaDashboard is one dashboard file of deploy/grafana/dashboards.
type grafanaDashboard struct {
	file          string
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Description   string         `json:"description"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Links []struct {
		URL string `json:"url"`
	} `json:"links"`
	Annotations struct {
		List []grafanaAnnotation `json:"list"`
	} `json:"annotations"`
}

// grafanaAnnotation is an annotation query of a dashboard; Grafana's built-in one has no
// target.
type grafanaAnnotation struct {
	Name       string         `json:"name"`
	Datasource *grafanaDSRef  `json:"datasource"`
	Target     *grafanaTarget `json:"target"`
}

// grafanaPanel is a panel; a row keeps its panels in Panels while collapsed.
type grafanaPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *grafanaDSRef   `json:"datasource"`
	Targets     []grafanaTarget `json:"targets"`
	Panels      []grafanaPanel  `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Unit  string        `json:"unit"`
			Links []grafanaLink `json:"links"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options any    `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

// grafanaDSRef refers to a data source by uid.
type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaTarget is one query of a panel: SQL (rawSql) or PromQL (expr).
type grafanaTarget struct {
	RefID      string        `json:"refId"`
	Datasource *grafanaDSRef `json:"datasource"`
	RawSQL     string        `json:"rawSql"`
	RawQuery   bool          `json:"rawQuery"`
	EditorMode string        `json:"editorMode"`
	Format     string        `json:"format"`
	Expr       string        `json:"expr"`
}

// grafanaLink is a data link.
type grafanaLink struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// grafanaVariable is a template variable.
type grafanaVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *grafanaDSRef   `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// sql returns the SQL of a query variable, saved as a string or, by newer Grafana
// versions, as an object with rawSql.
func (v grafanaVariable) sql() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var q struct {
		RawSQL string `json:"rawSql"`
	}
	json.Unmarshal(v.Query, &q)
	return q.RawSQL
}

// panelTarget is one target with the panel it belongs to and its effective data source.
type panelTarget struct {
	panel  grafanaPanel
	target grafanaTarget
	ds     grafanaDSRef
}

// name identifies the target in test output.
func (pt panelTarget) name() string {
	return pt.panel.Title + "/" + pt.target.RefID
}

// allPanels returns every panel of d, the panels of rows included, in order.
func (d grafanaDashboard) allPanels() []grafanaPanel {
	var out []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// targets returns every target of every panel of d, and its annotation queries. A target
// without a data source of its own uses its panel's, as in Grafana.
func (d grafanaDashboard) targets() []panelTarget {
	var out []panelTarget
	// An annotation query is run like a panel's, as a panel of type "annotation".
	for _, a := range d.Annotations.List {
		if a.Target == nil || a.Datasource == nil {
			continue
		}
		p := grafanaPanel{Type: "annotation", Title: a.Name, Datasource: a.Datasource}
		out = append(out, panelTarget{panel: p, target: *a.Target, ds: *a.Datasource})
	}
	for _, p := range d.allPanels() {
		for _, t := range p.Targets {
			pt := panelTarget{panel: p, target: t}
			switch {
			case t.Datasource != nil:
				pt.ds = *t.Datasource
			case p.Datasource != nil:
				pt.ds = *p.Datasource
			}
			out = append(out, pt)
		}
	}
	return out
}

// variable returns the template variable called name.
func (d grafanaDashboard) variable(name string) (grafanaVariable, bool) {
	i := slices.IndexFunc(d.Templating.List, func(v grafanaVariable) bool { return v.Name == name })
	if i < 0 {
		return grafanaVariable{}, false
	}
	return d.Templating.List[i], true
}

// dashboardByUID returns the dashboard whose uid is uid.
func dashboardByUID(t testing.TB, uid string) grafanaDashboard {
	t.Helper()
	for _, d := range loadDashboards(t) {
		if d.UID == uid {
			return d
		}
	}
	t.Fatalf("no dashboard %s", uid)
	return grafanaDashboard{}
}

// dashboardsDir holds the dashboards that Grafana's provisioning loads.
const dashboardsDir = "deploy/grafana/dashboards"

// loadDashboards parses every JSON file of deploy/grafana/dashboards.
func loadDashboards(t testing.TB) []grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboard in %s", dashboardsDir)
	}
	var out []grafanaDashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// provisionedDatasources returns the data sources of Grafana's provisioning by uid.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	var cfg struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/kohaku.yml", &cfg)
	out := map[string]string{}
	for _, ds := range cfg.Datasources {
		out[ds.UID] = ds.Type
	}
	return out
}

// Data source uids that the dashboards refer to.
const (
	postgresUID   = "kohaku-postgres"
	prometheusUID = "kohaku-prometheus"
)

// isSQL tells whether pt queries the PostgreSQL data source.
func (pt panelTarget) isSQL() bool { return pt.ds.UID == postgresUID }

// isProm tells whether pt queries the Prometheus data source.
func (pt panelTarget) isProm() bool { return pt.ds.UID == prometheusUID }

// hasLink tells whether p links the values of its field (or any field when field is "")
// to a URL starting with prefix.
func (p grafanaPanel) hasLink(field, prefix string) bool {
	for _, l := range p.FieldConfig.Defaults.Links {
		if strings.HasPrefix(l.URL, prefix) {
			return true
		}
	}
	for _, o := range p.FieldConfig.Overrides {
		if field != "" && (o.Matcher.ID != "byName" || o.Matcher.Options != field) {
			continue
		}
		for _, prop := range o.Properties {
			if prop.ID != "links" {
				continue
			}
			var ls []grafanaLink
			if err := json.Unmarshal(prop.Value, &ls); err != nil {
				continue
			}
			for _, l := range ls {
				if strings.HasPrefix(l.URL, prefix) {
					return true
				}
			}
		}
	}
	return false
}
