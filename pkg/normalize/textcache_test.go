package normalize

import (
	"fmt"
	"strings"
	"testing"
)

// TestTextCacheGivesEveryTextBack pins that a box holds its text whatever else the
// message boxed before: more texts than slots, so that many meet in a slot, texts that
// differ only in the middle (the hash reads their ends), and texts too long to keep.
func TestTextCacheGivesEveryTextBack(t *testing.T) {
	var texts []string
	for k := range 3 * textSlots {
		texts = append(texts, fmt.Sprintf("RTCInboundRTP%dVideoStream", k))
	}
	texts = append(texts, "aaaaaaaa1zzzzzzzz", "aaaaaaaa2zzzzzzzz", "", strings.Repeat("x", maxCachedText+1))
	c := new(textCache).renew()
	for round := range 2 {
		for _, want := range texts {
			if got := c.box([]byte(want)).(string); got != want {
				t.Fatalf("round %d: box(%q) = %q", round, want, got)
			}
		}
	}
}

// TestTextCacheSharesWithinAMessage pins what the cache saves and what it must not: a
// text boxed again in the same message costs no allocation, one of the message before
// is boxed anew, and a text over maxCachedText is never kept.
func TestTextCacheSharesWithinAMessage(t *testing.T) {
	long := []byte(strings.Repeat("y", maxCachedText+1))
	tests := []struct {
		name       string
		text       []byte
		renew      bool // a new message starts between the two boxes
		wantAllocs float64
	}{
		{"same message", []byte("RTCTransport_0_1"), false, 0},
		{"next message", []byte("RTCTransport_0_1"), true, 2},
		{"too long to keep", long, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := new(textCache)
			got := testing.AllocsPerRun(100, func() {
				c.renew()
				c.box(tt.text) // the string and its box: 2
				if tt.renew {
					c.renew()
				}
				c.box(tt.text)
			}) - 2
			if got != tt.wantAllocs {
				t.Errorf("allocations of the second box = %v, want %v", got, tt.wantAllocs)
			}
		})
	}
}
