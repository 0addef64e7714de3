package sim

import (
	"math/rand/v2"
	"time"
)

// crockford is Crockford's base32 alphabet, which Sora's 26-character ids use.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDLen is the length of Sora's session, connection and message ids.
const IDLen = 26

// newID returns a 26-character Crockford base32 id laid out like Sora's (a ULID): 48 bits
// of milliseconds since the epoch, then 80 random bits, so ids sort by creation time.
func newID(t time.Time, rng *rand.Rand) string {
	var b [IDLen]byte
	ms := uint64(t.UnixMilli())
	for i := 9; i >= 0; i-- { // 10 characters hold the 48-bit time (50 bits)
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	hi, lo := rng.Uint64()&(1<<16-1), rng.Uint64() // 16 + 64 = 80 random bits
	for i := IDLen - 1; i >= 10; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | (hi&31)<<59
		hi >>= 5
	}
	return string(b[:])
}
