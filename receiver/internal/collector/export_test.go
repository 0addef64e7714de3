package collector

import "net/http"

// Answer exposes the request path without the timing metrics around it, whose varying
// durations would make a fuzzer's coverage differ between runs of one input.
func (h *Handler) Answer(w http.ResponseWriter, r *http.Request) int {
	return h.answer(w, r, r.Header.Get("x-sora-stats-exporter-type"))
}
