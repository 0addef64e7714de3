package logging

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Build is what the Go toolchain recorded about the running program: which code a log,
// or a bug report, came from.
type Build struct {
	Version   string    // the main module's version; "(devel)" for a build of a working tree
	Revision  string    // VCS commit; "" when the build recorded none (-buildvcs=false, no git)
	Time      time.Time // commit time; zero when unknown
	Modified  bool      // the working tree had changes that the commit lacks
	GoVersion string    // the toolchain, such as "go1.26.8"
}

// ReadBuild returns the running program's Build, from runtime/debug.ReadBuildInfo; its
// fields are empty when the binary carries no build information.
func ReadBuild() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{}
	}
	return buildOf(bi)
}

func buildOf(bi *debug.BuildInfo) Build {
	b := Build{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time, _ = time.Parse(time.RFC3339, s.Value) // zero when malformed: unknown
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Line is what -version prints for program, on one line, such as
//
//	kohaku-writer version (devel), commit 19e8f8a1843c5ef33910ff2a997a266ba3dd281e (2026-12-02T00:57:15Z, modified), go1.26.8
func (b Build) Line(program string) string {
	var s strings.Builder
	version := b.Version
	if version == "" {
		version = "unknown"
	}
	fmt.Fprintf(&s, "%s version %s", program, version)
	if b.Revision == "" {
		s.WriteString(", commit unknown (built without VCS information)")
	} else {
		fmt.Fprintf(&s, ", commit %s (", b.Revision)
		if !b.Time.IsZero() {
			fmt.Fprintf(&s, "%s, ", b.Time.UTC().Format(time.RFC3339))
		}
		if b.Modified {
			s.WriteString("modified)")
		} else {
			s.WriteString("unmodified)")
		}
	}
	if b.GoVersion != "" {
		fmt.Fprintf(&s, ", %s", b.GoVersion)
	}
	return s.String()
}
