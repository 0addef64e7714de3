package normalize

// check.go decides whether a body can become rows at all (checkBody), before the scanner
// walks it, in one fast pass (quickCheck) that also notes what PostgreSQL could not store
// (U+0000, numbers beyond numeric); only when the body has some is each element checked
// on its own (storable), so that such a value costs its element, not its message.

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"kohaku/pkg/jsonscan"
)

// bodyFacts is what quickCheck learned about a body on its way.
type bodyFacts struct {
	surrogates bool // it escapes a UTF-16 surrogate (see checkBody)
	escaped    bool // a string or member name has an escape (see scanner.stringEnd)
	nul        bool // a string or member name escapes U+0000
	bigNumber  bool // a number is beyond what PostgreSQL's numeric can hold
	// ends holds where the first objects and arrays that are values of the top-level
	// object's members end, by where they start, so that reading the envelope need not
	// walk the stats array.
	ends  [8]span
	nEnds int
}

// unstorable reports whether some value of the body cannot be stored as it is, so that
// each part must be checked (see storable).
func (f *bodyFacts) unstorable() bool { return f.nul || f.bigNumber }

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

// numericShort is the length up to which a number without an exponent needs no range
// check: it has fewer digits before and after the point than its length, and numeric
// holds 131072 and 16383 of them.
const numericShort = 16383

// quickCheck is checkBody's fast path, one pass over the body without allocating (below
// a nesting of 64): it reports whether the body is valid JSON in valid UTF-8, and records
// in f whether it escapes U+0000 or a surrogate and whether a number is beyond numeric.
// When it is not valid, checkBody finds out why on the slow path, which words the error.
func quickCheck(d []byte, f *bodyFacts) bool {
	top := jsonscan.SkipSpace(d, 0)
	w := jsonscan.Walker{
		// encoding/json's limit, so that the fast check accepts what json.Valid accepts.
		MaxDepth: jsonscan.StdMaxDepth,
		Closed: func(depth, start, end int) {
			if depth == 2 && d[top] == '{' {
				f.closed(start, end)
			}
		},
		Number: func(n []byte) bool {
			if !fitsNumeric(n) {
				f.bigNumber = true
			}
			return true // noted: the element that holds it is set apart, not the body
		},
		ShortNumber: numericShort,
	}
	end, strs, ok := w.Value(d, top)
	f.surrogates = strs&jsonscan.SurrogateEscape != 0
	f.escaped = strs&jsonscan.Escaped != 0
	f.nul = strs&jsonscan.NULEscape != 0
	return ok && jsonscan.SkipSpace(d, end) == len(d)
}

// closed records that the container of depth 2 in the top-level object that started at
// start ended at end, while there is room.
func (f *bodyFacts) closed(start, end int) {
	if f.nEnds < len(f.ends) {
		f.ends[f.nEnds] = span{start, end}
		f.nEnds++
	}
}

// checkBody rejects a body that is not JSON or not UTF-8 (PostgreSQL text and jsonb need
// UTF-8). It fills f, which tells in particular whether the body escapes a UTF-16
// surrogate, which jsonb rejects when it is unpaired, so that raw JSON values must be
// normalized before they are stored, and whether it holds values that PostgreSQL cannot
// store at all, so that each part must be checked with storable.
func checkBody(body []byte, f *bodyFacts) error {
	if quickCheck(body, f) {
		return nil
	}
	return slowCheck(body)
}

// slowCheck words why quickCheck refused body, with encoding/json, whose definition of
// valid JSON quickCheck follows.
func slowCheck(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("body is not valid UTF-8")
	}
	var v any
	err := json.Unmarshal(body, &v) // only for its description of the syntax error
	if err == nil {
		err = errors.New("invalid JSON")
	}
	return err
}

// storable checks the JSON value that starts at d[p], in a body that checkBody accepted,
// for what PostgreSQL cannot store. It returns where the value ends and, when it cannot be
// stored, the Reject kind and the reason: a U+0000 in a string or member name (RejectNUL)
// comes first, then a number beyond numeric (RejectNumber).
func storable(d []byte, p int) (end int, kind, reason string) {
	var big []byte
	w := jsonscan.Walker{
		MaxDepth: jsonscan.StdMaxDepth,
		Number: func(n []byte) bool {
			if big == nil && !fitsNumeric(n) {
				big = n
			}
			return true
		},
		ShortNumber: numericShort,
	}
	end, strs, _ := w.Value(d, p)
	switch {
	case strs&jsonscan.NULEscape != 0:
		return end, RejectNUL, `a string holds \u0000, which PostgreSQL text and jsonb cannot store`
	case big != nil:
		return end, RejectNumber, "number " + truncate(string(big)) + " is beyond what PostgreSQL numeric can store"
	}
	return end, "", ""
}
