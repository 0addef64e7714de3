package collector

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"kohaku/pkg/sora"
)

// Paths of the fixed routes. The stats exporter's is fixed by Sora's stats_collector_url
// convention; the stats webhook's is configurable (Options.WebhookPath).
const (
	collectorPath = "/collector"
	okPath        = "/.ok"
)

// route is one ingest route: the header that names the type of its bodies, the types it
// takes, and what decides the type when the header is missing.
type route struct {
	header  string
	accepts func(typ string) bool
	unknown string // the error message for a type it does not take
	// bodyType returns the type of a body sent without the header; nil means the header is
	// required.
	bodyType func(body []byte) (string, error)
}

var (
	// exporterRoute is POST /collector: Sora's stats exporter always sends its header.
	exporterRoute = route{
		header:  sora.HeaderExporterType,
		accepts: sora.ExporterType,
		unknown: "missing or unknown exporter type; want " + sora.TypeUserAgent + " or " + sora.TypeErlangVM,
	}
	// webhookRoute is POST on the webhook path: Sora's stats webhook, whose body names its
	// type as well.
	webhookRoute = route{
		header:   sora.HeaderWebhookType,
		accepts:  sora.WebhookType,
		unknown:  unknownWebhookType,
		bodyType: webhookBodyType,
	}
)

// headerType returns the type that r's route header names when the route takes it, ""
// otherwise, and whether the header named any type at all.
func (rt *route) headerType(r *http.Request) (typ string, named bool) {
	typ = r.Header.Get(rt.header)
	named = typ != ""
	if !rt.accepts(typ) {
		typ = "" // only an accepted type may become a metric label
	}
	return typ, named
}

const unknownWebhookType = "unknown webhook type; want " + sora.TypeConnectionRTC

// typeError is a request whose type its route does not take; field is the header that
// named it, or "type" when the body did.
type typeError struct{ field, msg string }

func (e *typeError) Error() string { return e.field + ": " + e.msg }

// webhookBodyType returns the type of a webhook body sent without its header. A body
// without a usable "type" is validated as connection.rtc, so that the answer names what is
// wrong with it ("type: required", invalid JSON) instead of a vague unknown type.
func webhookBodyType(body []byte) (string, error) {
	switch t := sora.BodyType(body); {
	case t == "":
		return sora.TypeConnectionRTC, nil
	case sora.WebhookType(t):
		return t, nil
	}
	return "", &typeError{field: "type", msg: unknownWebhookType}
}

// checkWebhookPath returns an error unless p can serve the stats webhook: an absolute, clean
// path of unreserved URL characters (so that http.ServeMux reads no wildcard or host in
// it and it matches exactly one path), other than / and the other routes' paths.
func checkWebhookPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p:
		return fmt.Errorf("webhook path %q must be an absolute path without . or .. segments or a trailing /", p)
	case strings.ContainsFunc(p, func(c rune) bool { return !unreserved(c) && c != '/' }):
		return fmt.Errorf("webhook path %q may hold only letters, digits, /, -, ., _ and ~", p)
	case p == "/":
		return fmt.Errorf("webhook path %q would take every path", p)
	case p == collectorPath || p == okPath:
		return fmt.Errorf("webhook path %q is taken by another route", p)
	}
	return nil
}

// unreserved reports whether c is an unreserved URL character (RFC 3986 section 2.3).
func unreserved(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)
}
