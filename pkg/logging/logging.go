// Package logging builds the services' slog logger: colored by tint on a terminal, JSON
// otherwise, so that humans and log collectors each get what they read best. Every line
// names its service, since the receiver and the writer often share a terminal or a log
// collector, and durations read as Go durations ("200ms") in both formats. ReadBuild tells
// which build is running, for -version.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
)

// ServiceKey is the attribute that names the service on every JSON line.
const ServiceKey = "service"

// New returns the logger of service (such as "kohaku-writer") writing to w in format
// "auto", "text" or "json" at level. JSON lines carry the attribute service; text lines,
// meant for a person, begin with "service: " instead, like the programs' own messages.
func New(w io.Writer, service, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	if format == "auto" {
		format = "json"
		if IsTerminal(w) {
			format = "text"
		}
	}
	switch format {
	case "text":
		h := tint.NewHandler(w, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly, NoColor: !IsTerminal(w), ReplaceAttr: durationString})
		return slog.New(prefixed{Handler: h, prefix: service + ": "}), nil
	case "json":
		h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationString})
		return slog.New(h).With(ServiceKey, service), nil
	}
	return nil, fmt.Errorf("log format %q: want auto, text or json", format)
}

// durationString writes durations as their String ("1.5s"): slog's JSON handler writes
// them as integer nanoseconds, which nobody reads at a glance.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// prefixed puts prefix before every message: the service's name, where a person reading
// two programs' lines in one terminal looks first.
type prefixed struct {
	slog.Handler
	prefix string
}

func (h prefixed) Handle(ctx context.Context, r slog.Record) error {
	r.Message = h.prefix + r.Message // r is a copy: the caller's record is untouched
	return h.Handler.Handle(ctx, r)
}

func (h prefixed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return prefixed{Handler: h.Handler.WithAttrs(attrs), prefix: h.prefix}
}

func (h prefixed) WithGroup(name string) slog.Handler {
	return prefixed{Handler: h.Handler.WithGroup(name), prefix: h.prefix}
}

// IsTerminal reports whether w is a terminal: where colors, and progress lines for a person
// waiting, belong.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
