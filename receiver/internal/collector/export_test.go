package collector

import "net/http"

// CollectorPath exposes the stats exporter's fixed path.
const CollectorPath = collectorPath

// LoadClientCAs exposes loadClientCAs, which reads TLSFiles.ClientCA.
var LoadClientCAs = loadClientCAs

// Answer exposes the request path of the route of r's path (the webhook path, or else
// /collector) without the timing metrics around it, whose varying durations would make a
// fuzzer's coverage differ between runs of one input.
func (h *Handler) Answer(w http.ResponseWriter, r *http.Request) int {
	rt := &exporterRoute
	if r.URL.Path == h.o.WebhookPath {
		rt = &webhookRoute
	}
	_, status, _ := h.answer(w, r, rt, trackBody(r))
	return status
}

// WebhookPath exposes the path that h serves the stats webhook on.
func (h *Handler) WebhookPath() string { return h.o.WebhookPath }

// BodyLimit exposes the largest body accepted now: Options.MaxBodyBytes, capped by the
// connected NATS server's max payload less room for the headers.
func (h *Handler) BodyLimit() int64 { return h.bodyLimit() }
