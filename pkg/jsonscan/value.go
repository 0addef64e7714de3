package jsonscan

// StdMaxDepth is the nesting that encoding/json accepts: with it as MaxDepth, Value
// accepts exactly what json.Valid does, in valid UTF-8.
const StdMaxDepth = 10000

// Walker checks whole JSON values (see Value). Its fields are the hooks of a caller that
// checks more than the grammar; they are called per container or per unusual number, never
// per byte, and a nil hook checks nothing.
type Walker struct {
	// MaxDepth is how many containers may be open at once; a value nested deeper is
	// invalid. The zero Walker accepts no object or array.
	MaxDepth int
	// Closed, when not nil, is called as each container ends, with its depth (1 for the
	// outermost), the index of its bracket and the index after its closing one.
	Closed func(depth, start, end int)
	// Number, when not nil, is called with each number that has an exponent or is longer
	// than ShortNumber bytes, the rare ones whose size a range check must read; returning
	// false makes the value invalid.
	Number      func(n []byte) bool
	ShortNumber int
}

// Value checks the JSON value that starts at d[p], after any spaces: grammar, UTF-8 in
// strings, nesting within w.MaxDepth and w's hooks. It returns the index after the value,
// the flags of all its strings and member names ORed together, and whether it is valid.
// Value does not allocate unless the value nests deeper than 64 levels.
func (w *Walker) Value(d []byte, p int) (end int, strs StringFlags, ok bool) {
	var small [64]int
	stack := small[:0] // where the open containers start
	var open byte      // the innermost open container, '{' or '['
	maxDepth, closed, number, short := w.MaxDepth, w.Closed, w.Number, w.ShortNumber
	// Member reads the common member at once, past the Number hook: only numbers without
	// an exponent and shorter than memberWindow, which the hook need not see here.
	atOnce := number == nil || short >= memberWindow
	for {
		p = SkipSpace(d, p)
		if p >= len(d) {
			return p, strs, false
		}
		// A value starts at d[p].
		switch c := d[p]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return p, strs, false
			}
			stack = append(stack, p)
			open = c
			p = SkipSpace(d, p+1)
			if p < len(d) && d[p] == c+2 { // '}' is '{'+2, ']' is '['+2
				break // empty: the loop below closes it
			}
			if c == '{' {
				if atOnce {
					if _, e, read := Member(d, p); read {
						p = e
						break // a member ended: the loop below goes on from there
					}
				}
				var f StringFlags
				if p, f, ok = member(d, p); !ok {
					return p, strs, false
				}
				strs |= f
			}
			continue
		case c == '"':
			var f StringFlags
			var fault Fault
			if p, f, fault = String(d, p); fault != NoFault {
				return p, strs, false
			}
			strs |= f
		case c == '-' || (c >= '0' && c <= '9'):
			start := p
			var exp bool
			if p, exp, ok = Number(d, p); !ok {
				return p, strs, false
			}
			if number != nil && (exp || p-start > short) && !number(d[start:p]) {
				return start, strs, false
			}
		case c == 't' && Literal(d, p, "true"), c == 'n' && Literal(d, p, "null"):
			p += 4
		case c == 'f' && Literal(d, p, "false"):
			p += 5
		default:
			return p, strs, false
		}
		// A value ended at d[p]: close containers, or go on to the next member or element.
		for {
			if len(stack) == 0 {
				return p, strs, true
			}
			p = SkipSpace(d, p)
			if p >= len(d) {
				return p, strs, false
			}
			if d[p] == open+2 { // '}' is '{'+2, ']' is '['+2
				p++
				if closed != nil {
					closed(len(stack), stack[len(stack)-1], p)
				}
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					open = d[stack[len(stack)-1]]
				}
				continue
			}
			if d[p] != ',' {
				return p, strs, false
			}
			p++
			if open == '{' {
				p = SkipSpace(d, p)
				if atOnce {
					if _, e, read := Member(d, p); read {
						p = e
						continue
					}
				}
				var f StringFlags
				if p, f, ok = member(d, p); !ok {
					return p, strs, false
				}
				strs |= f
			}
			break
		}
	}
}

// member checks a member name at d[p] and its colon, and returns where the value may
// start (spaces not skipped) and the name's flags.
func member(d []byte, p int) (int, StringFlags, bool) {
	if p >= len(d) || d[p] != '"' {
		return p, 0, false
	}
	p, f, fault := String(d, p)
	if fault != NoFault {
		return p, f, false
	}
	p = SkipSpace(d, p)
	if p >= len(d) || d[p] != ':' {
		return p, f, false
	}
	return p + 1, f, true
}

// SkipSpace returns the index of the first byte at or after d[p] that is not JSON white
// space (space, tab, line feed, carriage return), len(d) when there is none.
func SkipSpace(d []byte, p int) int {
	// Compact JSON has no spaces: one comparison tells most bytes apart.
	for p < len(d) && d[p] <= ' ' && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t') {
		p++
	}
	return p
}

// Literal reports whether d[p:] starts with lit, such as "true".
func Literal(d []byte, p int, lit string) bool {
	return len(d)-p >= len(lit) && string(d[p:p+len(lit)]) == lit
}
