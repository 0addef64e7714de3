package config

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/kelseyhightower/envconfig"
)

// markdownTable renders envconfig's variable list as a markdown table.
var markdownTable = template.Must(template.New("config").Funcs(template.FuncMap{
	"cell": func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
}).Parse("| variable | default | meaning |\n|---|---|---|\n" +
	"{{range .}}| `{{.Key}}` | {{with .Tags.Get \"default\"}}`{{.}}`{{end}} | {{cell (.Tags.Get \"desc\")}} |\n{{end}}"))

// Markdown returns the variables of spec, a pointer to a service's envconfig struct, as a
// markdown table of name, default and meaning: the README's configuration reference.
func Markdown(spec any) (string, error) {
	var b bytes.Buffer
	if err := envconfig.Usaget(Prefix, spec, &b, markdownTable); err != nil {
		return "", fmt.Errorf("render configuration: %w", err)
	}
	return b.String(), nil
}
