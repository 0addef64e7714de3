package normalize

import "kohaku/pkg/jsonscan"

// bodyFacts is what quickCheck learned about a body on its way.
type bodyFacts struct {
	surrogates bool // it escapes a UTF-16 surrogate (see checkBody)
	// ends holds where the first objects and arrays that are values of the top-level
	// object's members end, by where they start, so that reading the envelope need not
	// walk the stats array.
	ends  [8]span
	nEnds int
}

// span is the start and end of a value in the body.
type span struct{ start, end int }

// end returns the end of the value that starts at p, if f knows it; f may be nil.
func (f *bodyFacts) end(p int) (int, bool) {
	if f == nil {
		return 0, false
	}
	for _, s := range f.ends[:f.nEnds] {
		if s.start == p {
			return s.end, true
		}
	}
	return 0, false
}

// quickCheck is checkBody's fast path, one pass over the body without allocating (below
// a nesting of 64): it reports ok when the body is valid JSON, valid UTF-8, free of the
// escape \u0000 and of numbers that PostgreSQL's numeric cannot hold. When it is not ok,
// checkBody finds out why on the slow path, which also words the error.
func quickCheck(d []byte, f *bodyFacts) (ok bool) {
	top := jsonscan.SkipSpace(d, 0)
	w := jsonscan.Walker{
		// encoding/json's limit, so that the fast check accepts what json.Valid accepts.
		MaxDepth: jsonscan.StdMaxDepth,
		Closed: func(depth, start, end int) {
			if depth == 2 && d[top] == '{' {
				f.closed(start, end)
			}
		},
		// Without an exponent a number has fewer digits before and after the point than
		// its length, and numeric holds 131072 and 16383 of them: only the others need
		// the exact check.
		Number:      fitsNumeric,
		ShortNumber: 16383,
	}
	end, strs, ok := w.Value(d, top)
	f.surrogates = strs&jsonscan.SurrogateEscape != 0
	// PostgreSQL cannot store \u0000: the slow path says so.
	return ok && strs&jsonscan.NULEscape == 0 && jsonscan.SkipSpace(d, end) == len(d)
}

// closed records that the container of depth 2 in the top-level object that started at
// start ended at end, while there is room.
func (f *bodyFacts) closed(start, end int) {
	if f.nEnds < len(f.ends) {
		f.ends[f.nEnds] = span{start, end}
		f.nEnds++
	}
}
