package schema

import (
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

func TestOptionsValidate(t *testing.T) {
	valid := Options{ChunkInterval: day, CompressAfter: 8 * day, RetainFor: 60 * day}
	tests := []struct {
		name    string
		opts    Options
		wantErr []string // substrings, all expected; none means valid
	}{
		{name: "defaults are valid", opts: Options{}.withDefaults()},
		{name: "explicit values", opts: valid},
		{name: "zero fields are invalid as they are", opts: Options{}, wantErr: []string{"ChunkInterval must be > 0", "CompressAfter must be > 0", "RetainFor must be > 0"}},
		{name: "negative chunk interval", opts: Options{ChunkInterval: -day, CompressAfter: 8 * day, RetainFor: 60 * day}, wantErr: []string{"ChunkInterval must be > 0"}},
		{name: "below interval resolution", opts: Options{ChunkInterval: day + time.Nanosecond, CompressAfter: 8 * day, RetainFor: 60 * day}, wantErr: []string{"whole microseconds"}},
		{name: "retention not longer than compression", opts: Options{ChunkInterval: day, CompressAfter: 8 * day, RetainFor: 8 * day}, wantErr: []string{"RetainFor (192h0m0s) must be longer than CompressAfter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want errors %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaultsCompressAfterTheStreamMaxAge(t *testing.T) {
	const streamMaxAge = 7 * day // DESIGN.md section 3
	o := Options{}.withDefaults()
	if o.CompressAfter <= streamMaxAge {
		t.Errorf("default CompressAfter %s, want longer than the stream MaxAge %s", o.CompressAfter, streamMaxAge)
	}
	if o.ChunkInterval != day || o.RetainFor != 60*day || o.Logger == nil {
		t.Errorf("defaults %+v, want 1 day chunks, 60 days retention and a logger", o)
	}
}

func TestInterval(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{day, "1 day"},
		{8 * day, "8 days"},
		{36 * time.Hour, "1 day 12 hours"},
		{90 * time.Minute, "1 hour 30 minutes"},
		{time.Second + 5*time.Microsecond, "1 second 5 microseconds"},
	}
	for _, tt := range tests {
		if got := interval(tt.d); got != tt.want {
			t.Errorf("interval(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
