// Package config holds the configuration fields that the receiver and the writer share.
// Each service embeds them, with the Options of its own packages, in one envconfig struct
// read with the KOHAKU_ prefix; the `default:` tags are where the defaults live, and
// Defaults applies them to a struct built in code.
package config

import (
	"errors"
	"fmt"
	"time"

	"kohaku/pkg/stream"
)

// Prefix is the environment prefix of every Kohaku variable.
const Prefix = "KOHAKU"

// NATS is how a service reaches JetStream and which stream it manages.
type NATS struct {
	NATSURL          string        `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma separated"`
	ManageStream     bool          `split_words:"true" default:"true" desc:"create or update the KOHAKU stream at start"`
	StreamMaxAge     time.Duration `split_words:"true" default:"168h" desc:"stream retention by age; replay reaches this far back"`
	StreamMaxBytes   int64         `split_words:"true" default:"10737418240" desc:"stream retention by size in bytes"`
	StreamDuplicates time.Duration `split_words:"true" default:"2m" desc:"window in which a retried request is stored once"`
	StreamReplicas   int           `split_words:"true" default:"1" desc:"stream replicas: 1 on a single node, 3 in a cluster"`
}

// Stream returns the stream configuration.
func (n NATS) Stream() stream.Config {
	return stream.Config{MaxAge: n.StreamMaxAge, MaxBytes: n.StreamMaxBytes, Duplicates: n.StreamDuplicates, Replicas: n.StreamReplicas}
}

// Validate reports the first invalid field.
func (n NATS) Validate() error {
	switch {
	case n.NATSURL == "":
		return errors.New("KOHAKU_NATS_URL is empty")
	case n.StreamMaxAge <= 0:
		return fmt.Errorf("KOHAKU_STREAM_MAX_AGE must be positive, got %s", n.StreamMaxAge)
	case n.StreamDuplicates <= 0 || n.StreamDuplicates > n.StreamMaxAge:
		return fmt.Errorf("KOHAKU_STREAM_DUPLICATES must be positive and at most the max age, got %s", n.StreamDuplicates)
	case n.StreamReplicas < 1 || n.StreamReplicas > 5:
		return fmt.Errorf("KOHAKU_STREAM_REPLICAS must be 1 to 5, got %d", n.StreamReplicas)
	}
	return nil
}

// Log selects the log format and level.
type Log struct {
	LogFormat string `split_words:"true" default:"auto" desc:"auto (colored text on a terminal, JSON otherwise), text or json"`
	LogLevel  string `split_words:"true" default:"info" desc:"debug, info, warn or error"`
}
