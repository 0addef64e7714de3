package normalize

import (
	"fmt"
	"runtime"
	"testing"
)

// TestValuesGiveEveryValueBack pins that a value kept in values reads back as the value
// it was, whatever came after it: over many chunks, after a garbage collection, compared
// with == and used as a map key as an interface made the usual way is.
func TestValuesGiveEveryValueBack(t *testing.T) {
	v := values{size: 100} // small chunks: many of them
	var want, got []any
	for k := range 2000 {
		text := fmt.Sprintf("RTCInboundRTPVideoStream_%d", k)
		want = append(want, int64(k)-1000, float64(k)/7, text, "")
		got = append(got, v.int(int64(k)-1000), v.float(float64(k)/7), v.text([]byte(text)), v.text(nil))
	}
	long := make([]byte, 1000) // longer than a chunk would fit well
	want, got = append(want, string(long)), append(got, v.text(long))
	runtime.GC()
	keys := make(map[any]int, len(got))
	for k := range got {
		if got[k] != want[k] {
			t.Fatalf("value %d = %#v, want %#v", k, got[k], want[k])
		}
		keys[got[k]] = k
	}
	for k := range want {
		if at, ok := keys[want[k]]; !ok || want[at] != want[k] {
			t.Fatalf("map key %#v not found", want[k])
		}
	}
}

// TestMessageAllocatesPerChunkNotPerValue pins what values saves: normalizing a
// browser's report takes far fewer allocations than its rows have numbers and texts,
// each of which would be one (two for a text) if converted to an interface on its own.
func TestMessageAllocatesPerChunkNotPerValue(t *testing.T) {
	typ, body := largestBody(t)
	var n Normalizer
	rows, err := n.Message(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, table := range rows.Tables {
		for _, row := range table {
			for _, x := range row {
				switch x.(type) {
				case int64, float64, string:
					kept++
				}
			}
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := n.Message(typ, body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > float64(kept)/4 {
		t.Errorf("%.0f allocations for a report whose rows hold %d numbers and texts; want at most a quarter", allocs, kept)
	}
}
