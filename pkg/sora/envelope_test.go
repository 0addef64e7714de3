package sora_test

import (
	"encoding/json"
	"testing"

	"kohaku/pkg/sora"
	"kohaku/testsupport/fixtures"
)

// TestEnvelopeTypesRoundTripFixtures pins the Go types to the wire format: a fixture decoded
// into its type and encoded again is still a valid message with the same members.
func TestEnvelopeTypesRoundTripFixtures(t *testing.T) {
	all, err := fixtures.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		t.Run(f.Name, func(t *testing.T) {
			var v any
			switch f.ExporterType {
			case sora.TypeUserAgent:
				v = &sora.UserAgent{}
			case sora.TypeErlangVM:
				v = &sora.ErlangVM{}
			default:
				t.Fatalf("unexpected exporter type %q", f.ExporterType)
			}
			if err := json.Unmarshal(f.Body, v); err != nil {
				t.Fatalf("decode: %v", err)
			}
			body, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if err := sora.Validate(f.ExporterType, body); err != nil {
				t.Errorf("re-encoded message is invalid: %v", err)
			}
			var want, got map[string]json.RawMessage
			if err := json.Unmarshal(f.Body, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("member %q lost by the Go type", k)
				}
			}
		})
	}
}
