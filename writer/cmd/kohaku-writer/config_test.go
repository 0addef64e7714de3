package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"kohaku/pkg/config"
)

// defaults returns the configuration with every default, as envconfig reads it from an
// environment without KOHAKU_ variables: under a prefix that no variable has.
func defaults(t *testing.T) Config {
	t.Helper()
	var c Config
	if err := envconfig.Process(config.Prefix+"_UNSET_FOR_TEST", &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"compression before the stream forgets", func(c *Config) { c.CompressAfter = 24 * time.Hour }, "KOHAKU_COMPRESS_AFTER"},
		{"compression exactly at the stream's age", func(c *Config) { c.CompressAfter = c.StreamMaxAge }, "KOHAKU_COMPRESS_AFTER"},
		{"retention before compression", func(c *Config) { c.RetainFor = c.CompressAfter }, "RetainFor"},
		{"no batch", func(c *Config) { c.BatchSize = 0 }, "KOHAKU_BATCH_SIZE"},
		{"ack pending below a batch", func(c *Config) { c.MaxAckPending = c.BatchSize - 1 }, "KOHAKU_MAX_ACK_PENDING"},
		{"batch bytes too small", func(c *Config) { c.BatchMaxBytes = 1000 }, "KOHAKU_BATCH_MAX_BYTES"},
		{"no batch rows", func(c *Config) { c.BatchMaxRows = 0 }, "KOHAKU_BATCH_MAX_ROWS"},
		{"no write connections", func(c *Config) { c.WriteConnections = 0 }, "KOHAKU_WRITE_CONNECTIONS"},
		{"ack wait too short", func(c *Config) { c.AckWait = 10 * time.Millisecond }, "KOHAKU_ACK_WAIT"},
		{"no database", func(c *Config) { c.DatabaseURL = "" }, "KOHAKU_DATABASE_URL"},
		{"replicas with the embedded server", func(c *Config) { c.EmbeddedNATS, c.StreamReplicas = true, 3 }, "KOHAKU_STREAM_REPLICAS"},
		{"embedded server without a directory", func(c *Config) { c.EmbeddedNATS, c.EmbeddedNATSDir = true, "" }, "KOHAKU_EMBEDDED_NATS_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults(t)
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit code %d, stderr %s", code, errOut.String())
	}
	for _, v := range []string{"KOHAKU_DATABASE_URL", "KOHAKU_ADMIN_LISTEN", "KOHAKU_BATCH_SIZE", "KOHAKU_BATCH_WAIT",
		"KOHAKU_MAX_ACK_PENDING", "KOHAKU_ACK_WAIT", "KOHAKU_BATCH_MAX_BYTES", "KOHAKU_BATCH_MAX_ROWS", "KOHAKU_WRITE_CONNECTIONS", "KOHAKU_MIGRATE", "KOHAKU_EMBEDDED_NATS", "KOHAKU_EMBEDDED_NATS_LISTEN",
		"KOHAKU_EMBEDDED_NATS_DIR", "KOHAKU_COMPRESS_AFTER", "KOHAKU_RETAIN_FOR", "KOHAKU_NATS_URL", "KOHAKU_LOG_FORMAT",
		":5892", "postgres://postgres@127.0.0.1:5432/kohaku?sslmode=disable", "replay", "import FILE..."} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h does not mention %s", v)
		}
	}
}

func TestArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown subcommand", []string{"rnu"}, `unknown subcommand "rnu"`},
		{"replay without since", []string{"replay"}, "--since is required"},
		{"replay with a bad time", []string{"replay", "--since", "yesterday"}, "RFC 3339"},
		{"replay backwards", []string{"replay", "--since", "2025-01-02T00:00:00Z", "--until", "2025-01-01T00:00:00Z"}, "before --since"},
		{"stray argument", []string{"run", "now"}, "unexpected arguments"},
		{"import without a file", []string{"import"}, "no FILE to import"},
		{"analyze without since", []string{"analyze"}, "--since is required"},
		{"analyze backwards", []string{"analyze", "--since", "1h", "--until", "2h"}, "before --since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tt.want)
			}
		})
	}
}
