package deploytest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"kohaku/testsupport/dbtest"
)

// The Connection dashboard charts each report (kohaku_*_rates) for time ranges up to 6 hours
// and minutes (kohaku_*_1m) beyond: each time-series query has one branch per source,
// guarded by the length of the time range.

// rangeGuard is the condition that picks a branch by the length of the time range.
var rangeGuard = regexp.MustCompile(`\$__timeTo\(\)::timestamptz - \$__timeFrom\(\)::timestamptz (<=|>) interval '6 hours'`)

func TestConnectionDashboardChartsReportsUpToSixHoursAndMinutesBeyond(t *testing.T) {
	d := dashboardByUID(t, "kohaku-connection")
	guarded := 0
	for _, pt := range d.targets() {
		sql := pt.target.RawSQL
		if !pt.isSQL() || !strings.Contains(sql, "_rates") {
			continue
		}
		guarded++
		got := map[string]bool{}
		for _, m := range rangeGuard.FindAllStringSubmatch(sql, -1) {
			got[m[1]] = true
		}
		if len(got) != 2 || strings.Count(sql, "UNION ALL") != 1 {
			t.Errorf("%s: want two branches joined by UNION ALL, one guarded by <= and one by > interval '6 hours':\n%s", pt.name(), sql)
		}
		if !strings.Contains(pt.panel.Description, "6 hours") {
			t.Errorf("%s: the description does not say how the panel picks its source by range", pt.name())
		}
	}
	if guarded < 20 {
		t.Errorf("%d queries read the per-report views, want every time series of streams (at least 20)", guarded)
	}

	conn, err := pgx.Connect(t.Context(), dbtest.Database(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	span := fillFromFixtures(t, conn)
	minInterval := postgresMinInterval(t)

	ranges := []struct {
		name string
		pad  time.Duration
		// reports: the points of a query that reads the minute views are the reports'
		// own times (false: whole minutes).
		reports bool
	}{
		{name: "one hour", pad: 30 * time.Minute, reports: true},
		{name: "twelve hours", pad: 6 * time.Hour, reports: false},
	}
	for _, r := range ranges {
		t.Run(r.name, func(t *testing.T) {
			from, to := span.first.Add(-r.pad), span.last.Add(r.pad)
			qc := resolveVariables(t, conn, queryContext{from: from, to: to, interval: panelInterval(from, to, minInterval)}, d, everyValue)
			for _, pt := range d.targets() {
				if !pt.isSQL() {
					continue
				}
				t.Run(pt.name(), func(t *testing.T) {
					res := runPanelQuery(t, conn, qc, pt.target.RawSQL)
					checkShape(t, res, pt.target.Format)
					if pt.target.Format != "time_series" || !strings.Contains(pt.target.RawSQL, "_1m") {
						return
					}
					// The fixtures' reports are 2 s apart with fractions of a second: only
					// the minute views give whole minutes.
					wholeMinutes := true
					for _, row := range res.rows {
						at := row[indexOf(res.columns, "time")].(time.Time)
						wholeMinutes = wholeMinutes && at.Equal(at.Truncate(time.Minute))
					}
					if wholeMinutes == r.reports {
						t.Errorf("over %s the points are at whole minutes: %v, want %v (reports up to 6 hours, minutes beyond)", r.name, wholeMinutes, !r.reports)
					}
				})
			}
		})
	}
}

func indexOf(cols []string, name string) int {
	for i, c := range cols {
		if c == name {
			return i
		}
	}
	return -1
}

// colouredPanel is what the colour thresholds of a panel are made of.
type colouredPanel struct {
	ID          int    `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	FieldConfig struct {
		Defaults struct {
			Thresholds struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
			Custom struct {
				ThresholdsStyle struct {
					Mode string `json:"mode"`
				} `json:"thresholdsStyle"`
			} `json:"custom"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

func TestConnectionDashboardColoursTheFiguresThatHurtACall(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, dashboardsDir, "connection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []colouredPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	want := []string{"Received loss", "Received jitter", "Received round trip time", "Received frames per second",
		"Sent loss", "Sent jitter", "Sent round trip time", "Sent frames per second", "Audio concealment",
		"Candidate pair round trip time"}
	byTitle := map[string]colouredPanel{}
	for _, p := range d.Panels {
		byTitle[p.Title] = p
	}
	for _, title := range want {
		p, ok := byTitle[title]
		if !ok {
			t.Errorf("no panel %q", title)
			continue
		}
		steps := p.FieldConfig.Defaults.Thresholds.Steps
		var colours []string
		for _, s := range steps {
			colours = append(colours, s.Color)
		}
		if len(steps) != 3 || steps[0].Value != nil || steps[1].Value == nil || steps[2].Value == nil || *steps[1].Value >= *steps[2].Value {
			t.Errorf("%s: thresholds %v, want a base and two rising steps", title, colours)
			continue
		}
		if c := strings.Join(colours, " "); c != "green #EAB839 red" && c != "red #EAB839 green" {
			t.Errorf("%s: colours %s, want green, amber, red (or the reverse where more is better)", title, c)
		}
		if p.FieldConfig.Defaults.Custom.ThresholdsStyle.Mode == "" || p.FieldConfig.Defaults.Custom.ThresholdsStyle.Mode == "off" {
			t.Errorf("%s: the thresholds are not drawn (thresholdsStyle)", title)
		}
		if !strings.Contains(p.Description, "Colours:") {
			t.Errorf("%s: the description does not give the thresholds", title)
		}
	}
}
