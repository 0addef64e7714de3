package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	now := time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name         string
		since, until string
		want         replayRange
		wantErr      string // in the error; "" for none
	}{
		{name: "RFC 3339 since", since: "2025-01-31T09:00:00Z", want: replayRange{since: at("2025-01-31T09:00:00Z")}},
		{name: "RFC 3339 both", since: "2025-01-31T09:00:00Z", until: "2025-01-31T10:30:00+01:00",
			want: replayRange{since: at("2025-01-31T09:00:00Z"), until: at("2025-01-31T09:30:00Z")}},
		{name: "duration ago", since: "2h", want: replayRange{since: at("2025-01-31T10:00:00Z")}},
		{name: "durations both", since: "10m", until: "90s",
			want: replayRange{since: at("2025-01-31T11:50:00Z"), until: at("2025-01-31T11:58:30Z")}},
		{name: "compound duration", since: "1h30m", want: replayRange{since: at("2025-01-31T10:30:00Z")}},
		{name: "time and duration", since: "2025-01-31T09:00:00Z", until: "1h",
			want: replayRange{since: at("2025-01-31T09:00:00Z"), until: at("2025-01-31T11:00:00Z")}},
		{name: "since missing", wantErr: "--since is required"},
		{name: "since neither", since: "yesterday", wantErr: "--since: want an RFC 3339 time"},
		{name: "day is no Go duration", since: "2d", wantErr: "--since: want an RFC 3339 time"},
		{name: "until neither", since: "2h", until: "noon", wantErr: "--until: want an RFC 3339 time"},
		{name: "negative duration", since: "-2h", wantErr: "--since: duration -2h: want a positive duration"},
		{name: "zero duration", since: "0s", wantErr: "--since: duration 0s"},
		{name: "until before since", since: "1h", until: "2h", wantErr: "--until 2h is before --since 1h"},
		{name: "until before since, times", since: "2025-01-31T09:00:00Z", until: "2025-01-31T08:00:00Z", wantErr: "is before --since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRange(tt.since, tt.until, now)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("got %v, want %+v", err, tt.want)
			case !got.since.Equal(tt.want.since) || !got.until.Equal(tt.want.until):
				t.Errorf("got since %s until %s, want since %s until %s", got.since, got.until, tt.want.since, tt.want.until)
			}
		})
	}
}
