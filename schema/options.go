package schema

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"kohaku/pkg/config"
)

// Options configures the TimescaleDB part of [Migrate]; without TimescaleDB the durations
// are not used. The durations are part of the writer's configuration: each is the variable
// its tag names (KOHAKU_ prefixed), and a zero one takes the default there.
type Options struct {
	// ChunkInterval is the time range of one hypertable chunk. A change applies to chunks
	// created afterwards. The default, one day, is a chunk of a busy Sora's stats that fits
	// in memory with its indexes; dashboards mostly look at the last hours.
	ChunkInterval time.Duration `split_words:"true" default:"24h" desc:"TimescaleDB: time range of one chunk"`
	// CompressAfter is the age after which a chunk is compressed. It must be longer than
	// the stream's MaxAge, so that replayed messages never land in compressed chunks; the
	// writer checks that, since it knows the stream. The default, 8 days, is one day
	// longer than the stream's default MaxAge: every message still in the stream
	// (redelivered or replayed) then lands in an uncompressed chunk, where inserting and the
	// duplicate check stay cheap.
	CompressAfter time.Duration `split_words:"true" default:"192h" desc:"TimescaleDB: age after which chunks are compressed; must exceed KOHAKU_STREAM_MAX_AGE"`
	// RetainFor is the age after which a chunk is dropped. The per-minute continuous
	// aggregates keep their minutes as long. The default, 60 days, is the retention
	// DESIGN.md names.
	RetainFor time.Duration `split_words:"true" default:"1440h" desc:"TimescaleDB: age after which chunks are dropped"`
	// Logger receives what Migrate does; nil discards it.
	Logger *slog.Logger `ignored:"true"`
}

// withDefaults returns o with every zero duration set to the default of its tag.
func (o Options) withDefaults() Options {
	if err := config.Defaults(&o); err != nil {
		panic(err) // the tags are constants, which the tests read
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every invalid field of o as it is, zero fields included: it checks a
// configuration after its defaults were filled in. Each duration must be positive and whole
// microseconds (PostgreSQL's interval resolution), and RetainFor must be longer than
// CompressAfter, or chunks would be dropped before they are ever compressed.
func (o Options) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ChunkInterval", o.ChunkInterval},
		{"CompressAfter", o.CompressAfter},
		{"RetainFor", o.RetainFor},
	} {
		switch {
		case d.v <= 0:
			errs = append(errs, fmt.Errorf("schema: %s must be > 0, got %s", d.name, d.v))
		case d.v%time.Microsecond != 0:
			errs = append(errs, fmt.Errorf("schema: %s must be whole microseconds, got %s", d.name, d.v))
		}
	}
	if o.CompressAfter > 0 && o.RetainFor > 0 && o.RetainFor <= o.CompressAfter {
		errs = append(errs, fmt.Errorf("schema: RetainFor (%s) must be longer than CompressAfter (%s)", o.RetainFor, o.CompressAfter))
	}
	return errors.Join(errs...)
}

// interval writes d as a PostgreSQL interval literal that reads well in
// timescaledb_information.jobs, e.g. "8 days" or "1 day 12 hours".
func interval(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	var parts []string
	for _, u := range []struct {
		name string
		size time.Duration
	}{
		{"day", 24 * time.Hour},
		{"hour", time.Hour},
		{"minute", time.Minute},
		{"second", time.Second},
		{"microsecond", time.Microsecond},
	} {
		n := d / u.size
		if n == 0 {
			continue
		}
		d -= n * u.size
		name := u.name
		if n != 1 && n != -1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	return strings.Join(parts, " ")
}
