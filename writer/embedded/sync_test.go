package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseSyncReadsNATSServerSpelling(t *testing.T) {
	tests := []struct {
		name, in string
		want     Sync
		wantErr  bool
	}{
		{name: "always", in: "always", want: Sync{Always: true}},
		{name: "always in capitals", in: "ALWAYS", want: Sync{Always: true}},
		{name: "interval", in: "10s", want: Sync{Interval: 10 * time.Second}},
		{name: "empty is the default", in: "", want: Sync{}},
		{name: "default", in: "default", want: Sync{}},
		{name: "zero interval", in: "0s", wantErr: true},
		{name: "negative interval", in: "-1s", wantErr: true},
		{name: "no unit", in: "10", wantErr: true},
		{name: "other word", in: "never", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSync(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrSync) {
					t.Errorf("ParseSync(%q) = %v, %v; want an ErrSync", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSync(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// What String prints, ParseSync reads back.
			if back, err := ParseSync(got.String()); err != nil || back != got {
				t.Errorf("ParseSync(%q) = %v, %v; want %v", got.String(), back, err, got)
			}
		})
	}
}

// The server takes the policy, and stores and acknowledges messages with it.
func TestServerRunsWithSyncPolicy(t *testing.T) {
	tests := []struct {
		name         string
		sync         Sync
		wantAlways   bool
		wantInterval time.Duration
	}{
		{name: "always", sync: Sync{Always: true}, wantAlways: true, wantInterval: 2 * time.Minute},
		{name: "interval", sync: Sync{Interval: 5 * time.Second}, wantInterval: 5 * time.Second},
		{name: "default is nats-server's two minutes", sync: Sync{}, wantInterval: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(Options{Listen: "127.0.0.1:0", Dir: t.TempDir(), Sync: tt.sync})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Shutdown)
			cfg := s.srv.JetStreamConfig()
			if cfg == nil {
				t.Fatal("JetStream is not enabled")
			}
			if cfg.SyncAlways != tt.wantAlways || cfg.SyncInterval != tt.wantInterval {
				t.Errorf("JetStream sync_always %v, sync_interval %s; want %v, %s", cfg.SyncAlways, cfg.SyncInterval, tt.wantAlways, tt.wantInterval)
			}

			nc, err := nats.Connect(s.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SYNC", Subjects: []string{"sync.>"}, Storage: jetstream.FileStorage})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := js.Publish(ctx, "sync.test", []byte{byte(i)}); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != 3 {
				t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
			}
		})
	}
}
