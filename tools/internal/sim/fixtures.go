package sim

import (
	"fmt"
	"strings"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// FixtureTemplate returns the template of the project's Chromium capture: the successive
// reports of fixtures chromium-pc1-* (one sendrecv connection with audio, video and a data
// channel) and the first node.erlang-vm fixture.
func FixtureTemplate() (*Template, error) {
	all, err := fixtures.All()
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	var reports [][]byte
	var node []byte
	for _, f := range all { // All sorts by name, so the reports come oldest first
		switch {
		case strings.HasPrefix(f.Name, "chromium-pc1-") && f.ExporterType == sora.TypeUserAgent:
			reports = append(reports, f.Body)
		case f.ExporterType == sora.TypeErlangVM && node == nil:
			node = f.Body
		}
	}
	if len(reports) == 0 || node == nil {
		return nil, fmt.Errorf("sim: fixtures: want chromium-pc1-* and a node.erlang-vm report, found %d and %t", len(reports), node != nil)
	}
	return NewTemplate(reports, node)
}
