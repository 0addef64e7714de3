package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"kohaku/pkg/sora"
)

func TestMultistreamReportIsLargeDistinctAndValid(t *testing.T) {
	for _, f := range []feed{exporterFeed, webhookFeed} {
		t.Run(f.Name, func(t *testing.T) {
			small, err := f.fixture()
			if err != nil {
				t.Fatal(err)
			}
			got, err := multistream(small, multistreamStreams)
			if err != nil {
				t.Fatal(err)
			}
			if err := sora.Validate(f.typ, got); err != nil {
				t.Fatalf("the large report does not validate: %v", err)
			}
			if n := len(got); n < 150<<10 || n > 300<<10 {
				t.Errorf("%d bytes, want about 200 KB", n)
			}
			var report struct {
				Timestamp string `json:"timestamp"`
				Stats     []struct {
					ID, Type, CodecID, RemoteID, LocalID string
				} `json:"stats"`
			}
			if err := json.Unmarshal(got, &report); err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			types := map[string]int{}
			for _, e := range report.Stats {
				if ids[e.ID] {
					t.Errorf("id %s repeats", e.ID)
				}
				ids[e.ID] = true
				types[e.Type]++
			}
			for _, e := range report.Stats {
				for _, ref := range []string{e.CodecID, e.RemoteID, e.LocalID} {
					if ref != "" && !ids[ref] {
						t.Errorf("%s %s refers to %s, which is not in the report", e.Type, e.ID, ref)
					}
				}
			}
			if types["inbound-rtp"] < multistreamStreams || types["remote-outbound-rtp"] < multistreamStreams {
				t.Errorf("got %v elements by type, want at least %d received streams", types, multistreamStreams)
			}
			// The envelope is kept: its timestamp can be stamped as the small body's.
			at, err := stampAt(got)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := stampAt(small); !bytes.Equal(got[:want], small[:want]) || at != want {
				t.Errorf("the envelope before the timestamp changed")
			}
		})
	}
}
