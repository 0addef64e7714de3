package logging

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildLine(t *testing.T) {
	const rev = "19e8f8a1843c5ef33910ff2a997a266ba3dd281e"
	tests := []struct {
		name     string
		settings []debug.BuildSetting
		version  string
		want     string
	}{
		{
			name:    "working tree with changes",
			version: "(devel)",
			settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
				{Key: "vcs.time", Value: "2026-12-02T00:57:15Z"}, {Key: "vcs.modified", Value: "true"}},
			want: "kohaku-writer version (devel), commit " + rev + " (2026-12-02T00:57:15Z, modified), go1.26.8",
		},
		{
			name:    "tagged and unmodified",
			version: "v1.2.0",
			settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-12-02T00:57:15Z"},
				{Key: "vcs.modified", Value: "false"}},
			want: "kohaku-writer version v1.2.0, commit " + rev + " (2026-12-02T00:57:15Z, unmodified), go1.26.8",
		},
		{
			name:     "commit without time",
			version:  "(devel)",
			settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}},
			want:     "kohaku-writer version (devel), commit " + rev + " (unmodified), go1.26.8",
		},
		{
			name:     "built without VCS information",
			version:  "(devel)",
			settings: []debug.BuildSetting{{Key: "-buildvcs", Value: "false"}},
			want:     "kohaku-writer version (devel), commit unknown (built without VCS information), go1.26.8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "kohaku/writer", Version: tt.version}, Settings: tt.settings}
			if got := buildOf(bi).Line("kohaku-writer"); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReadBuild(t *testing.T) {
	// A test binary carries build information too: at least the toolchain.
	b := ReadBuild()
	if !strings.HasPrefix(b.GoVersion, "go") {
		t.Errorf("GoVersion %q", b.GoVersion)
	}
	if line := b.Line("kohaku-receiver"); !strings.HasPrefix(line, "kohaku-receiver version ") {
		t.Errorf("Line = %q", line)
	}
}

func TestBuildLineOfEmptyBuild(t *testing.T) {
	if got, want := (Build{}).Line("kohaku-receiver"), "kohaku-receiver version unknown, commit unknown (built without VCS information)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
