package normalize

import (
	"testing"
)

// BenchmarkMessage normalizes the largest fixture, as the writer does for every message.
func BenchmarkMessage(b *testing.B) {
	var body []byte
	var typ string
	for _, fx := range testBodies(b) {
		if len(fx.Body) > len(body) {
			body, typ = fx.Body, fx.ExporterType
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Message(typ, body); err != nil {
			b.Fatal(err)
		}
	}
}
