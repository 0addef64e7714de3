package deploytest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// queryContext is what Grafana knows when it sends a SQL panel's query to PostgreSQL: the
// dashboard's time range, the panel's interval and the template variables' values.
// expand turns a panel's rawSql into the SQL that the data source runs, in Grafana's order:
// the browser substitutes the template variables, then the data source's backend replaces
// $__interval and friends, then its macros ($__timeFilter(...) and the like).
type queryContext struct {
	from, to time.Time
	interval time.Duration
	// timescaledb is the data source's TimescaleDB switch, which changes $__timeGroup.
	timescaledb bool
	vars        map[string]variableValue
}

// variableValue is the current value of a template variable.
type variableValue struct {
	values []string
	// list is true for a variable that may hold several values (multi or include All):
	// Grafana's SQL data sources then quote each value even without a format.
	list bool
	// allValue is the variable's custom all value when "All" is selected: Grafana inserts
	// it as written, without formatting.
	allValue *string
}

// templateVariable is the syntax of Grafana's template variables in a query: $name,
// [[name:format]] and ${name.fieldPath:format}.
var templateVariable = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}`)

// sqlMacro is the syntax that the PostgreSQL data source's macro engine replaces.
var sqlMacro = regexp.MustCompile(`\$([_a-zA-Z0-9]+)\(([^)]*)\)`)

// leftover finds what looks like a variable or macro that nothing replaced.
var leftover = regexp.MustCompile(`\$\{|\$[A-Za-z_]|\[\[\w`)

// expand returns sql as the PostgreSQL data source would run it.
func (qc queryContext) expand(sql string) (string, error) {
	s, err := qc.substituteVariables(sql)
	if err != nil {
		return "", err
	}
	s = qc.substituteGlobals(s)
	s, err = qc.substituteMacros(s)
	if err != nil {
		return "", err
	}
	if loc := leftover.FindStringIndex(s); loc != nil {
		end := min(loc[1]+30, len(s))
		return "", fmt.Errorf("unresolved variable or macro at %q", s[loc[0]:end])
	}
	return s, nil
}

// substituteVariables replaces the dashboard's template variables as Grafana's browser
// does before sending a query. Names it does not know, such as the macros, stay.
func (qc queryContext) substituteVariables(sql string) (string, error) {
	var err error
	out := templateVariable.ReplaceAllStringFunc(sql, func(m string) string {
		g := templateVariable.FindStringSubmatch(m)
		name, format := g[1]+g[2]+g[4], g[3]+g[6]
		if g[5] != "" {
			err = fmt.Errorf("%s: field paths are not supported", m)
			return m
		}
		v, ok := qc.vars[name]
		if !ok {
			return m
		}
		s, ferr := v.format(format)
		if ferr != nil && err == nil {
			err = fmt.Errorf("%s: %w", m, ferr)
		}
		return s
	})
	return out, err
}

// format writes v as Grafana's SQL data sources do with the given variable format.
func (v variableValue) format(format string) (string, error) {
	if v.allValue != nil && format != "text" {
		return *v.allValue, nil
	}
	each := func(f func(string) string) string {
		parts := make([]string, len(v.values))
		for i, s := range v.values {
			parts[i] = f(s)
		}
		return strings.Join(parts, ",")
	}
	sqlQuote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch format {
	case "":
		if v.list {
			return each(sqlQuote), nil
		}
		// A single value is only escaped: the query writes the quotes around it.
		return each(func(s string) string { return strings.ReplaceAll(s, "'", "''") }), nil
	case "sqlstring":
		return each(sqlQuote), nil
	case "csv", "raw", "text":
		return each(func(s string) string { return s }), nil
	case "singlequote":
		return each(func(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }), nil
	case "doublequote":
		return each(func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }), nil
	default:
		return "", fmt.Errorf("format %q is not supported by this test", format)
	}
}

// substituteGlobals replaces what every Grafana SQL data source replaces first.
func (qc queryContext) substituteGlobals(sql string) string {
	// $__interval_ms first: $__interval is its prefix.
	sql = strings.ReplaceAll(sql, "$__interval_ms", strconv.FormatInt(qc.interval.Milliseconds(), 10))
	sql = strings.ReplaceAll(sql, "$__interval", formatInterval(qc.interval))
	sql = strings.ReplaceAll(sql, "$__unixEpochFrom()", strconv.FormatInt(qc.from.Unix(), 10))
	sql = strings.ReplaceAll(sql, "$__unixEpochTo()", strconv.FormatInt(qc.to.Unix(), 10))
	return sql
}

// substituteMacros replaces the PostgreSQL data source's macros.
func (qc queryContext) substituteMacros(sql string) (string, error) {
	var err error
	out := sqlMacro.ReplaceAllStringFunc(sql, func(m string) string {
		g := sqlMacro.FindStringSubmatch(m)
		name := g[1]
		// Grafana reads "$__timeGroup(...)," as $__timeGroupAlias, for dashboards older
		// than 5.3.
		if name == "__timeGroup" {
			if i := strings.Index(sql, m); i >= 0 && strings.HasPrefix(sql[i+len(m):], ",") {
				name = "__timeGroupAlias"
			}
		}
		args := strings.Split(g[2], ",")
		for i := range args {
			args[i] = strings.TrimSpace(args[i])
		}
		s, merr := qc.macro(name, args)
		if merr != nil && err == nil {
			err = fmt.Errorf("%s: %w", m, merr)
		}
		return s
	})
	return out, err
}

func (qc queryContext) macro(name string, args []string) (string, error) {
	from, to := qc.from.UTC(), qc.to.UTC()
	col := args[0]
	needColumn := func() error {
		if col == "" {
			return fmt.Errorf("missing time column argument")
		}
		return nil
	}
	switch name {
	case "__time":
		return col + ` AS "time"`, needColumn()
	case "__timeEpoch":
		return `extract(epoch from ` + col + `) as "time"`, needColumn()
	case "__timeFilter":
		return fmt.Sprintf("%s BETWEEN '%s' AND '%s'", col, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano)), needColumn()
	case "__timeFrom":
		return "'" + from.Format(time.RFC3339Nano) + "'", nil
	case "__timeTo":
		return "'" + to.Format(time.RFC3339Nano) + "'", nil
	case "__timeGroup", "__timeGroupAlias":
		if len(args) < 2 {
			return "", fmt.Errorf("needs a time column and an interval")
		}
		iv, err := parseInterval(strings.Trim(args[1], "'"))
		if err != nil {
			return "", err
		}
		s := fmt.Sprintf("floor(extract(epoch from %s)/%v)*%v", col, iv.Seconds(), iv.Seconds())
		if qc.timescaledb {
			s = fmt.Sprintf("time_bucket('%.3fs',%s)", iv.Seconds(), col)
		}
		if name == "__timeGroupAlias" {
			s += ` AS "time"`
		}
		return s, nil
	case "__unixEpochFilter":
		return fmt.Sprintf("%s >= %d AND %s <= %d", col, from.Unix(), col, to.Unix()), needColumn()
	case "__unixEpochNanoFilter":
		return fmt.Sprintf("%s >= %d AND %s <= %d", col, from.UnixNano(), col, to.UnixNano()), needColumn()
	case "__unixEpochNanoFrom":
		return strconv.FormatInt(from.UnixNano(), 10), nil
	case "__unixEpochNanoTo":
		return strconv.FormatInt(to.UnixNano(), 10), nil
	default:
		return "", fmt.Errorf("unknown macro %q", name)
	}
}

// formatInterval writes d as Grafana writes $__interval: its largest whole unit.
func formatInterval(d time.Duration) string {
	const day, year = 24 * time.Hour, 365 * 24 * time.Hour
	switch {
	case d >= year:
		return fmt.Sprintf("%dy", d/year)
	case d >= day:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d >= time.Second:
		return fmt.Sprintf("%ds", d/time.Second)
	case d >= time.Millisecond:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return "1ms"
}

// parseInterval reads an interval as Grafana's macros do: a Go duration, or a number of
// days, weeks or years.
func parseInterval(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return time.Duration(v) * unit, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("interval %q: %w", s, err)
	}
	return d, nil
}

// panelInterval is the $__interval that Grafana gives a panel about maxDataPoints pixels
// wide for the range [from, to]: the range divided by the points, never below the data
// source's minimum (timeInterval in its provisioning), in whole milliseconds.
func panelInterval(from, to time.Time, minInterval time.Duration) time.Duration {
	const maxDataPoints = 1000
	return max(minInterval, to.Sub(from)/maxDataPoints).Truncate(time.Millisecond)
}

func TestExpandLikeGrafana(t *testing.T) {
	all := "NULL"
	qc := queryContext{
		from:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		to:       time.Date(2026, 1, 2, 4, 4, 5, 500_000_000, time.UTC),
		interval: 30 * time.Second,
		vars: map[string]variableValue{
			"conn":  {values: []string{"it's"}},
			"chans": {values: []string{"a", "b'c"}, list: true},
			"any":   {values: []string{"x"}, list: true, allValue: &all},
		},
	}
	tests := []struct {
		name, sql, want, wantErr string
	}{
		{"timeFilter is BETWEEN RFC 3339 bounds", `WHERE $__timeFilter(o.time)`,
			`WHERE o.time BETWEEN '2026-01-02T03:04:05Z' AND '2026-01-02T04:04:05.5Z'`, ""},
		{"timeFrom and timeTo are quoted", `$__timeFrom()::timestamptz, $__timeTo()`,
			`'2026-01-02T03:04:05Z'::timestamptz, '2026-01-02T04:04:05.5Z'`, ""},
		{"interval and interval_ms", `$__interval_ms * interval '1 millisecond', '$__interval'`, `30000 * interval '1 millisecond', '30s'`, ""},
		{"unix epoch bounds", `$__unixEpochFrom() $__unixEpochTo() $__unixEpochFilter(t)`, `1767323045 1767326645 t >= 1767323045 AND t <= 1767326645`, ""},
		{"single value is escaped, not quoted", `'$conn' = '${conn}'`, `'it''s' = 'it''s'`, ""},
		{"sqlstring quotes each value", `IN (${chans:sqlstring}) OR c = ${conn:sqlstring}`, `IN ('a','b''c') OR c = 'it''s'`, ""},
		{"multi value is quoted by default", `IN ($chans)`, `IN ('a','b''c')`, ""},
		{"csv joins values", `${chans:csv}`, `a,b'c`, ""},
		{"custom all value is inserted as written", `${any:sqlstring}`, `NULL`, ""},
		{"timeGroup", `$__timeGroupAlias(time, '5m')`, `floor(extract(epoch from time)/300)*300 AS "time"`, ""},
		{"timeGroup followed by a comma gets its alias", `SELECT $__timeGroup(time, $__interval), x`, `SELECT floor(extract(epoch from time)/30)*30 AS "time", x`, ""},
		{"unknown macro", `$__nope(x)`, "", "unknown macro"},
		{"unknown variable", `= '$nope'`, "", "unresolved"},
		{"unknown format", `${conn:glob}`, "", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := qc.expand(tt.sql)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("expand(%q) = %q, %v; want an error with %q", tt.sql, got, err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("expand(%q): %v", tt.sql, err)
			case got != tt.want:
				t.Errorf("expand(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestTimeGroupWithTimescaleDBUsesTimeBucket(t *testing.T) {
	qc := queryContext{timescaledb: true}
	got, err := qc.expand(`$__timeGroupAlias(time, 1m)`)
	if want := `time_bucket('60.000s',time) AS "time"`; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}
