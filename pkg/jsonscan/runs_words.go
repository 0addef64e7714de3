//go:build !goexperiment.simd || !amd64

package jsonscan

// plainRun returns the index of the first byte at or after d[p] that is not plain (see
// plainByte), len(d) when there is none. Built without vector instructions, it reads
// eight bytes at a time (runs_vector_amd64.go has the other build).
func plainRun(d []byte, p int) int { return plainWords(d, p) }

// digits returns the index of the first byte at or after d[p] that is not a digit,
// eight bytes at a time.
func digits(d []byte, p int) int { return digitWords(d, p) }

// Member reads nothing in this build: its callers read each member token by token
// (runs_vector_amd64.go has the build that reads common members at once).
func Member(d []byte, p int) (keyEnd, end int, ok bool) { return 0, 0, false }

// memberAtOnce reports whether Member reads members in this build and on this CPU.
func memberAtOnce() bool { return false }
