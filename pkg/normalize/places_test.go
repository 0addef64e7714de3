package normalize

import "testing"

// TestPlacesOfEveryName pins that places.of finds what a map of the layout's names would:
// every typed column by its member, the stats timestamp, type and id, and nothing else.
func TestPlacesOfEveryName(t *testing.T) {
	for _, l := range tables.tables {
		if l == tables.other {
			continue // typedRow never fills it
		}
		want := map[string]int{"type": memberSkip, "id": memberSkip}
		if l == tables.erlang {
			want["id"] = memberExtra
		}
		if l.statsTimestamp >= 0 {
			want["timestamp"] = l.statsTimestamp
		}
		for k, c := range l.columns {
			if c.member != "" && c.member != "type" && c.member != "timestamp" {
				want[c.member] = k
			}
		}
		for name, col := range want {
			if got := l.places.of([]byte(name)); got != col {
				t.Errorf("%s: of(%q) = %d, want %d", l.name, name, got, col)
			}
		}
		for _, name := range []string{"", "x", "Type", "bytesReceived ", "packetsLostX", "kind\x00", "aVeryLongMemberNameThatNoTableHas"} {
			if _, ok := want[name]; ok {
				continue
			}
			if got := l.places.of([]byte(name)); got != memberExtra {
				t.Errorf("%s: of(%q) = %d, want memberExtra", l.name, name, got)
			}
		}
	}
}

// BenchmarkPlaces finds every member of inbound-rtp, the largest table, with places and
// with a map, which places replaces.
func BenchmarkPlaces(b *testing.B) {
	l := tables.byType["inbound-rtp"]
	var keys [][]byte
	m := map[string]int{}
	for _, c := range l.columns {
		if c.member != "" {
			keys = append(keys, []byte(c.member))
			m[c.member] = l.places.of([]byte(c.member))
		}
	}
	b.Run("places", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				l.places.of(k)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				_ = m[string(k)]
			}
		}
	})
}
