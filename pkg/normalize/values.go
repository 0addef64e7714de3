package normalize

import "unsafe"

// values holds the int64, float64 and text values of one message's rows. Converting such
// a value to an interface copies it to the heap: a browser's report has a few hundred, and
// each copy is an allocation and an object for the writer's garbage collector to mark,
// together most of the allocations of normalizing (BenchmarkMessage). Here the values go
// into chunks, and the rows' interfaces point into them (boxAt): an allocation per chunk.
//
// A chunk is never written again once a slot of it is handed out, and the rows keep their
// chunks alive: a value taken out of a row and kept (a string most of all) keeps its
// whole chunk, a few KiB, which is why a chunk is sized by the body.
type values struct {
	ints   slab[int64]
	floats slab[float64]
	texts  slab[string]
	bytes  []byte // the bytes of the texts, which the strings of texts point into
	size   int    // the body's length, which chunks are sized by
}

// Browsers' reports hold an integer per 80-90 bytes, a float per 140, and a text per 55,
// whose bytes are about a sixth of the body (Chromium captures of 12 KB): a chunk of each
// sized so holds a report's values.
func (v *values) int(x int64) any     { return v.ints.box(x, v.size/64+16) }
func (v *values) float(x float64) any { return v.floats.box(x, v.size/128+16) }

// text returns the text t in an interface; its bytes are copied into v, or into a string
// of its own when longer than a chunk would fit well.
func (v *values) text(t []byte) any {
	chunk := v.size/4 + 256
	if len(t) == 0 || len(t) > chunk/4 {
		return string(t)
	}
	if cap(v.bytes)-len(v.bytes) < len(t) {
		v.bytes = make([]byte, 0, chunk)
	}
	start := len(v.bytes)
	v.bytes = append(v.bytes, t...)
	return v.texts.box(unsafe.String(&v.bytes[start], len(t)), v.size/48+16)
}

// slab hands out slots for values that interfaces point into, a chunk at a time. A full
// chunk is left as it is, never grown: its slots are in use.
type slab[T int64 | float64 | string] struct {
	chunk []T
}

// box returns x in an interface whose value is a slot of s, taking a new chunk of size
// slots when the one at hand is full.
func (s *slab[T]) box(x T, size int) any {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, size)
	}
	s.chunk = append(s.chunk, x)
	return boxAt(&s.chunk[len(s.chunk)-1])
}

// eface is how Go lays out an interface value without methods: its dynamic type and a
// pointer to its value, which is immutable.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// boxAt returns an interface holding *p whose value is *p itself, not a copy of it. *p
// must never change afterwards.
func boxAt[T int64 | float64 | string](p *T) any {
	var zero T
	v := any(zero) // the runtime's static zero value: no allocation
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(p)
	return v
}
