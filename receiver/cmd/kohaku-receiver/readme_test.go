package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"text/template"

	"github.com/kelseyhightower/envconfig"

	"kohaku/pkg/config"
)

var updateREADME = flag.Bool("update", false, "rewrite the README's table of kohaku-receiver's variables from Config")

// readmeSection is where README.md keeps the table that this test generates.
const (
	readmeFile  = "../../../README.md"
	readmeBegin = "<!-- config:kohaku-receiver -->\n"
	readmeEnd   = "<!-- /config:kohaku-receiver -->"
)

// configTable renders envconfig's variable list as a markdown table.
var configTable = template.Must(template.New("config").Funcs(template.FuncMap{
	"cell": func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
}).Parse("| variable | default | meaning |\n|---|---|---|\n" +
	"{{range .}}| `{{.Key}}` | {{with .Tags.Get \"default\"}}`{{.}}`{{end}} | {{cell (.Tags.Get \"desc\")}} |\n{{end}}"))

// TestREADMEDocumentsEveryVariable keeps README.md's configuration table equal to Config:
// every variable with its default and meaning. After changing Config, regenerate it with
//
//	go test ./receiver/cmd/kohaku-receiver -run TestREADMEDocumentsEveryVariable -update
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	var table bytes.Buffer
	if err := envconfig.Usaget(config.Prefix, &Config{}, &table, configTable); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(readme), readmeBegin)
	current, tail, ok2 := strings.Cut(rest, readmeEnd)
	if !ok || !ok2 {
		t.Fatalf("README.md lacks the markers %q and %q around the table", strings.TrimSpace(readmeBegin), readmeEnd)
	}
	if current == table.String() {
		return
	}
	if *updateREADME {
		out := head + readmeBegin + table.String() + readmeEnd + tail
		if err := os.WriteFile(readmeFile, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's table of variables differs from Config; run\n\tgo test ./receiver/cmd/kohaku-receiver -run %s -update\nwant:\n%s\ngot:\n%s",
		t.Name(), table.String(), current)
}
