package main

import (
	"encoding/json"
	"testing"
)

func TestScrubReplacesOnlyOwnCandidateAddresses(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "loopback kept",
			in:   `[{"type":"local-candidate","id":"I1","address":"127.0.0.1","ip":"127.0.0.1","port":1}]`,
			want: `[{"type":"local-candidate","id":"I1","address":"127.0.0.1","ip":"127.0.0.1","port":1}]`,
		},
		{
			name: "interface addresses replaced consistently",
			in:   `[{"type":"local-candidate","id":"I1","address":"10.1.2.3","ip":"10.1.2.3"},{"type":"remote-candidate","id":"I2","address":"fe80::1","relatedAddress":"10.1.2.3"}]`,
			want: `[{"type":"local-candidate","id":"I1","address":"203.0.113.1","ip":"203.0.113.1"},{"type":"remote-candidate","id":"I2","address":"2001:db8::1","relatedAddress":"203.0.113.1"}]`,
		},
		{
			name: "redacted and mDNS addresses kept",
			in:   `[{"type":"remote-candidate","id":"I1","address":""},{"type":"local-candidate","id":"I2","address":"0b7c.local"}]`,
			want: `[{"type":"remote-candidate","id":"I1","address":""},{"type":"local-candidate","id":"I2","address":"0b7c.local"}]`,
		},
		{
			name: "other stats types untouched",
			in:   `[{"type":"codec","id":"C1","sdpFmtpLine":"10.1.2.3","priority":9114756780654345000}]`,
			want: `[{"type":"codec","id":"C1","sdpFmtpLine":"10.1.2.3","priority":9114756780654345000}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newAddressScrubber().Scrub(json.RawMessage(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Scrub =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
