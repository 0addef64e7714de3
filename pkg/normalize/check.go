package normalize

// check.go decides whether a body can become rows at all (checkBody), before the scanner
// walks it: one fast pass (quickCheck) and, only when that refuses, encoding/json to word
// the error.

import (
	"bytes"
	"encoding/json"
	"errors"
	"kohaku/pkg/jsonscan"
	"unicode/utf8"
)

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

// checkBody rejects what no row can hold: a body that is not JSON or not UTF-8 (PostgreSQL
// text and jsonb need UTF-8), and the escape \u0000, which neither text nor jsonb accept.
// It fills f, which tells in particular whether the body escapes a UTF-16 surrogate, which
// jsonb rejects when it is unpaired, so that raw JSON values must be normalized before they
// are stored. It reports whether every number was found to fit PostgreSQL's numeric; when
// not, the scanner checks them.
func checkBody(body []byte, f *bodyFacts) (numbersChecked bool, err error) {
	if quickCheck(body, f) {
		return true, nil
	}
	// The slow path words the error. It also decides when the quick check refused for a
	// number, which the scanner then finds and reports.
	*f = bodyFacts{}
	f.surrogates, err = slowCheck(body)
	return false, err
}

// slowCheck is checkBody's definition, with encoding/json; it reports whether the body
// escapes a UTF-16 surrogate.
func slowCheck(body []byte) (surrogates bool, err error) {
	if !utf8.Valid(body) {
		return false, errors.New("body is not valid UTF-8")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // only for its description of the syntax error
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return false, err
	}
	for rest := body; ; {
		k := bytes.Index(rest, []byte(`\u`))
		if k < 0 {
			break
		}
		// An escape only when preceded by an even number of backslashes ("\\u" is not).
		n := 0
		for n < k && rest[k-1-n] == '\\' {
			n++
		}
		if n%2 == 0 && k+6 <= len(rest) {
			hex := rest[k+2 : k+6]
			if string(hex) == "0000" {
				return false, errors.New(`a string holds \u0000, which PostgreSQL text and jsonb cannot store`)
			}
			if hex[0] == 'd' || hex[0] == 'D' {
				if c := hex[1] | 0x20; c >= '8' && c <= 'f' && (c <= '9' || c >= 'a') {
					surrogates = true
				}
			}
		}
		rest = rest[k+2:]
	}
	return surrogates, nil
}
