package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"kohaku/pkg/normalize"
	"kohaku/writer/internal/store"
	"kohaku/writer/internal/writertest"
)

func TestCheckSchemaNamesWhatTheDatabaseLacks(t *testing.T) {
	tests := []struct {
		name    string
		empty   bool   // a database without the migrations
		alter   string // run on a migrated database
		want    []store.MissingColumns
		wantMsg []string
	}{
		{name: "a migrated database has everything"},
		{
			name:  "a typed column added by a later migration",
			alter: `ALTER TABLE rtc_outbound_rtp_stats DROP COLUMN total_encoded_bytes_target`,
			want:  []store.MissingColumns{{Table: "rtc_outbound_rtp_stats", Columns: []string{"total_encoded_bytes_target"}}},
			wantMsg: []string{"table rtc_outbound_rtp_stats lacks the column total_encoded_bytes_target",
				"kohaku-writer migrate", "KOHAKU_MIGRATE=true"},
		},
		{
			name: "columns of two tables",
			alter: `ALTER TABLE rtc_codec_stats DROP COLUMN extra, DROP COLUMN mime_type;
				ALTER TABLE sora_connection DROP COLUMN feed`,
			want: []store.MissingColumns{
				{Table: "rtc_codec_stats", Columns: []string{"mime_type", "extra"}},
				{Table: "sora_connection", Columns: []string{"feed"}},
			},
			wantMsg: []string{"table rtc_codec_stats lacks the columns mime_type, extra; table sora_connection lacks the column feed"},
		},
		{
			name:    "a missing table",
			alter:   `DROP TABLE kohaku_dead_letter`,
			wantMsg: []string{"table kohaku_dead_letter does not exist"},
		},
		{name: "a database never migrated", empty: true, wantMsg: []string{"table rtc_codec_stats does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := writertest.Database
			if tt.empty {
				url = writertest.EmptyDatabase
			}
			pool := writertest.Pool(t, url(t))
			ctx := context.Background()
			if tt.alter != "" {
				if _, err := pool.Exec(ctx, tt.alter); err != nil {
					t.Fatal(err)
				}
			}
			err := store.CheckSchema(ctx, pool)
			if tt.wantMsg == nil {
				if err != nil {
					t.Fatalf("CheckSchema: %v, want nil", err)
				}
				return
			}
			var se *store.SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("CheckSchema: %v, want a *store.SchemaError", err)
			}
			if tt.want != nil && !reflect.DeepEqual(se.Missing, tt.want) {
				t.Errorf("Missing %+v, want %+v", se.Missing, tt.want)
			}
			if tt.empty && len(se.Missing) != len(normalize.StatsTables())+2 {
				t.Errorf("%d tables missing, want every stats table, sora_connection and kohaku_dead_letter: %+v", len(se.Missing), se.Missing)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
