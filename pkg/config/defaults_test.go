package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

type inner struct {
	Wait time.Duration `split_words:"true" default:"200ms"`
	Size int           `split_words:"true" default:"500"`
}

type sample struct {
	Name     string        `default:"kohaku"`
	On       bool          `default:"true"`
	Count    int           `default:"0x10"`
	Bytes    int64         `split_words:"true" default:"10737418240"`
	Age      time.Duration `default:"168h"`
	Empty    string        `default:""`
	Untagged string
	Skipped  int `ignored:"true" default:"7"`
	hidden   int `default:"7"`
	inner        // unexported: envconfig cannot set it either
	NATS         // exported embedded struct, as the services embed
}

func TestDefaults(t *testing.T) {
	want := sample{Name: "kohaku", On: true, Count: 16, Bytes: 10 << 30, Age: 168 * time.Hour,
		inner: inner{}, NATS: NATS{NATSURL: "nats://127.0.0.1:4222", ManageStream: true, StreamMaxAge: 168 * time.Hour,
			StreamMaxBytes: 10 << 30, StreamDuplicates: 2 * time.Minute, StreamReplicas: 1}}
	tests := []struct {
		name string
		in   sample
		want sample
	}{
		{name: "zero struct", in: sample{}, want: want},
		{name: "set fields stay", in: sample{Name: "set", Age: time.Second, NATS: NATS{StreamReplicas: 3}},
			want: func() sample { w := want; w.Name, w.Age, w.StreamReplicas = "set", time.Second, 3; return w }()},
		{name: "untagged, ignored and unexported fields stay", in: sample{Untagged: "u", Skipped: 1, hidden: 2},
			want: func() sample { w := want; w.Untagged, w.Skipped, w.hidden = "u", 1, 2; return w }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			if err := Defaults(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestDefaultsAgreeWithEnvconfig checks Defaults against what envconfig reads from an
// environment without the variables: under a prefix that no variable has.
func TestDefaultsAgreeWithEnvconfig(t *testing.T) {
	type service struct {
		NATS
		Log
		Listen string        `default:":5890"`
		Wait   time.Duration `split_words:"true" default:"1m"`
		Size   int64         `split_words:"true" default:"4194304"`
	}
	var got, want service
	if err := Defaults(&got); err != nil {
		t.Fatal(err)
	}
	if err := envconfig.Process(Prefix+"_UNSET_FOR_TEST", &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Defaults gave\n%+v\nenvconfig\n%+v", got, want)
	}
}

func TestDefaultsErrors(t *testing.T) {
	var s sample
	tests := []struct {
		name string
		v    any
		want string // in the error
	}{
		{name: "not a pointer", v: s, want: "want a non-nil pointer to a struct"},
		{name: "nil pointer", v: (*sample)(nil), want: "want a non-nil pointer to a struct"},
		{name: "pointer to a non-struct", v: new(int), want: "want a non-nil pointer to a struct"},
		{name: "bad duration", v: &struct {
			D time.Duration `default:"soon"`
		}{}, want: `D: default "soon"`},
		{name: "bad bool", v: &struct {
			B bool `default:"maybe"`
		}{}, want: `B: default "maybe"`},
		{name: "int8", v: &struct {
			N int8 `default:"1000"`
		}{}, want: "unsupported kind int8"},
		{name: "bad int", v: &struct {
			N int `default:"many"`
		}{}, want: `N: default "many"`},
		{name: "unsupported kind", v: &struct {
			F float64 `default:"1.5"`
		}{}, want: "unsupported kind float64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Defaults(tt.v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
