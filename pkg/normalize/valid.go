package normalize

import "unicode/utf8"

// maxNesting is encoding/json's nesting limit, which the fast check keeps so that it
// accepts exactly what json.Valid accepts.
const maxNesting = 10000

// strByte classifies the bytes inside a JSON string: 0 for a byte that stands for itself,
// 1 for one that needs a closer look (a quote, a backslash, a control character, the
// start of a multi-byte UTF-8 sequence).
var strByte = func() (t [256]byte) {
	for c := range 256 {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			t[c] = 1
		}
	}
	return t
}()

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
	var small [64]byte
	stack := small[:0] // the open containers, '{' or '['
	var starts [3]int  // where the open containers of depth 1 and 2 start
	surrogates := &f.surrogates
	p := skipSpace(d, 0)
	for {
		// A value starts at d[p].
		if p >= len(d) {
			return false
		}
		switch c := d[p]; {
		case c == '{' || c == '[':
			if len(stack) >= maxNesting {
				return false
			}
			stack = append(stack, c)
			if len(stack) < len(starts) {
				starts[len(stack)] = p
			}
			p = skipSpace(d, p+1)
			if p < len(d) && d[p] == c+2 { // '}' is '{'+2 and ']' is '['+2
				f.closed(len(stack), starts[min(len(stack), 2)], p+1, stack[0])
				stack = stack[:len(stack)-1]
				p++
				break
			}
			if c == '{' {
				var good bool
				if p, good = objectKey(d, p, surrogates); !good {
					return false
				}
			}
			continue
		case c == '"':
			var good bool
			if p, good = checkString(d, p, surrogates); !good {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			var good bool
			if p, good = checkNumber(d, p); !good {
				return false
			}
		case c == 't':
			if !literal(d, p, "true") {
				return false
			}
			p += 4
		case c == 'f':
			if !literal(d, p, "false") {
				return false
			}
			p += 5
		case c == 'n':
			if !literal(d, p, "null") {
				return false
			}
			p += 4
		default:
			return false
		}
		// A value ended at d[p]: close containers, or go on to the next member or element.
		for {
			p = skipSpace(d, p)
			if len(stack) == 0 {
				return p == len(d)
			}
			if p >= len(d) {
				return false
			}
			open := stack[len(stack)-1]
			if d[p] == open+2 {
				f.closed(len(stack), starts[min(len(stack), 2)], p+1, stack[0])
				stack = stack[:len(stack)-1]
				p++
				continue
			}
			if d[p] != ',' {
				return false
			}
			p = skipSpace(d, p+1)
			if open == '{' {
				var good bool
				if p, good = objectKey(d, p, surrogates); !good {
					return false
				}
			}
			break
		}
	}
}

// closed records that the container at depth, which started at start, ended at end.
func (f *bodyFacts) closed(depth, start, end int, outermost byte) {
	if depth == 2 && outermost == '{' && f.nEnds < len(f.ends) {
		f.ends[f.nEnds] = span{start, end}
		f.nEnds++
	}
}

// objectKey checks a member name and its colon at d[p] and returns where the value starts.
func objectKey(d []byte, p int, surrogates *bool) (int, bool) {
	if p >= len(d) || d[p] != '"' {
		return p, false
	}
	p, ok := checkString(d, p, surrogates)
	if !ok {
		return p, false
	}
	p = skipSpace(d, p)
	if p >= len(d) || d[p] != ':' {
		return p, false
	}
	return skipSpace(d, p+1), true
}

// checkString checks the string that starts at d[p] (a quote) and returns the index after it.
func checkString(d []byte, p int, surrogates *bool) (int, bool) {
	p++
	for {
		for p < len(d) && strByte[d[p]] == 0 {
			p++
		}
		if p >= len(d) {
			return p, false
		}
		switch c := d[p]; {
		case c == '"':
			return p + 1, true
		case c < 0x20:
			return p, false
		case c == '\\':
			if p+1 >= len(d) {
				return p, false
			}
			switch d[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+6 > len(d) {
					return p, false
				}
				var v rune
				for _, h := range d[p+2 : p+6] {
					x := hexDigit(h)
					if x < 0 {
						return p, false
					}
					v = v<<4 | rune(x)
				}
				if v == 0 {
					return p, false // PostgreSQL cannot store it: the slow path says so
				}
				if v >= 0xd800 && v <= 0xdfff {
					*surrogates = true
				}
				p += 6
			default:
				return p, false
			}
		default: // the start of a multi-byte sequence
			r, size := utf8.DecodeRune(d[p:])
			if r == utf8.RuneError && size == 1 {
				return p, false
			}
			p += size
		}
	}
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// checkNumber checks the number that starts at d[p] against JSON's grammar and against
// what PostgreSQL's numeric holds (see fitsNumeric), and returns the index after it.
func checkNumber(d []byte, p int) (int, bool) {
	start := p
	if d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && d[p] >= '1' && d[p] <= '9':
		p = digitsEnd(d, p+1)
	default:
		return p, false
	}
	if p < len(d) && d[p] == '.' {
		q := digitsEnd(d, p+1)
		if q == p+1 {
			return p, false
		}
		p = q
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		q := digitsEnd(d, p)
		if q == p {
			return p, false
		}
		return q, fitsNumeric(d[start:q]) // rare in stats: the exact check
	}
	// Without an exponent a number has fewer digits before and after the point than its
	// length, and numeric holds 131072 and 16383 of them.
	return p, p-start <= 16383 || fitsNumeric(d[start:p])
}

func digitsEnd(d []byte, p int) int {
	for p < len(d) && d[p] >= '0' && d[p] <= '9' {
		p++
	}
	return p
}

// literal reports whether d[p:] starts with lit.
func literal(d []byte, p int, lit string) bool {
	return len(d)-p >= len(lit) && string(d[p:p+len(lit)]) == lit
}
