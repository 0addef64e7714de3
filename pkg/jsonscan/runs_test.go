package jsonscan

import "testing"

// TestRunsMatchWords holds plainRun and digits, which read 16 bytes at a time in a build
// with GOEXPERIMENT=simd, to where a run ends and to the eight-byte versions: one byte
// that ends the run, or none, at every place of bodies of every length up to three
// vectors, read from every start.
func TestRunsMatchWords(t *testing.T) {
	tests := []struct {
		name       string
		run, words func([]byte, int) int
		fill       []byte // bytes that continue the run
		stops      []byte // bytes that end it
	}{
		{"plain", plainRun, plainWords,
			[]byte{'a', ' ', '~', 0x7f, '!', '#', '[', ']'},
			[]byte{'"', '\\', 0x00, '\n', 0x1f, 0x80, 0xc3, 0xff}},
		{"digits", digits, digitWords,
			[]byte{'0', '5', '9'},
			[]byte{'/', ':', '.', 'e', '-', ' ', 0x00, 0x80, 0xb0, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for n := range 49 {
				d := make([]byte, n)
				for i := range d {
					d[i] = tt.fill[i%len(tt.fill)]
				}
				for k := 0; k <= n; k++ { // k == n: no byte ends the run
					for _, stop := range tt.stops {
						if k < n {
							d[k] = stop
						}
						for p := 0; p <= k; p++ {
							got, words := tt.run(d, p), tt.words(d, p)
							if got != k || words != k {
								t.Fatalf("len %d, %#x at %d, from %d: run %d, words %d, want %d", n, stop, k, p, got, words, k)
							}
						}
						if k == n {
							break
						}
					}
					if k < n {
						d[k] = tt.fill[k%len(tt.fill)]
					}
				}
			}
		})
	}
}
