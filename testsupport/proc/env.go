package proc

import (
	"os"
	"strings"
)

// CleanEnv returns this process's environment without its KOHAKU_ variables, other than the
// tests' own KOHAKU_TEST_ ones, followed by env: a developer's settings must not change
// what a test runs, and later entries win.
func CleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KOHAKU_") && !strings.HasPrefix(kv, "KOHAKU_TEST_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, env...)
}
