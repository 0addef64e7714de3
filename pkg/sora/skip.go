package sora

import "unicode/utf8"

// quickSkip returns the index after the JSON value that starts at d[p] (after any spaces)
// and true, when that value is well formed (grammar, UTF-8 in strings, nesting within
// maxDepth counting depth levels above it). It is skip without its error reporting: a loop
// over the bytes with the open containers on a small stack, no call per member. When it
// returns false, skip goes over the same value again to word the error.
func quickSkip(d []byte, p, depth int) (int, bool) {
	var stack [maxDepth]byte // the open containers, '{' or '['
	n := 0                   // containers open
	for {
		p = skipWS(d, p)
		if p >= len(d) {
			return p, false
		}
		// A value starts at d[p].
		switch c := d[p]; {
		case c == '{' || c == '[':
			if depth+n >= maxDepth {
				return p, false
			}
			stack[n] = c
			n++
			p = skipWS(d, p+1)
			if p < len(d) && d[p] == c+2 { // '}' is '{'+2, ']' is '['+2
				n--
				p++
				break
			}
			if c == '{' {
				var ok bool
				if p, ok = quickKey(d, p); !ok {
					return p, false
				}
			}
			continue
		case c == '"':
			var ok bool
			if p, ok = quickString(d, p); !ok {
				return p, false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			var ok bool
			if p, ok = quickNumber(d, p); !ok {
				return p, false
			}
		case c == 't' && hasPrefix(d, p, "true"), c == 'n' && hasPrefix(d, p, "null"):
			p += 4
		case c == 'f' && hasPrefix(d, p, "false"):
			p += 5
		default:
			return p, false
		}
		// A value ended at d[p]: close containers, or go on to the next member or element.
		for {
			if n == 0 {
				return p, true
			}
			p = skipWS(d, p)
			if p >= len(d) {
				return p, false
			}
			open := stack[n-1]
			if d[p] == open+2 {
				n--
				p++
				continue
			}
			if d[p] != ',' {
				return p, false
			}
			p++
			if open == '{' {
				var ok bool
				if p, ok = quickKey(d, skipWS(d, p)); !ok {
					return p, false
				}
			}
			break
		}
	}
}

func skipWS(d []byte, p int) int {
	for p < len(d) && (d[p] == ' ' || d[p] == '\n' || d[p] == '\r' || d[p] == '\t') {
		p++
	}
	return p
}

func hasPrefix(d []byte, p int, lit string) bool {
	return len(d)-p >= len(lit) && string(d[p:p+len(lit)]) == lit
}

// quickKey checks a member name at d[p] and its colon, and returns where the value starts.
func quickKey(d []byte, p int) (int, bool) {
	if p >= len(d) || d[p] != '"' {
		return p, false
	}
	p, ok := quickString(d, p)
	if !ok {
		return p, false
	}
	p = skipWS(d, p)
	if p >= len(d) || d[p] != ':' {
		return p, false
	}
	return p + 1, true
}

// quickString checks the string that starts at d[p] (a quote) and returns the index after it.
func quickString(d []byte, p int) (int, bool) {
	p++
	for {
		p = plainRun(d, p)
		if p >= len(d) {
			return p, false
		}
		switch c := d[p]; {
		case c == '"':
			return p + 1, true
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
				for _, h := range d[p+2 : p+6] {
					if hexVal(h) < 0 {
						return p, false
					}
				}
				p += 6
			default:
				return p, false
			}
		case c < 0x20:
			return p, false
		default: // not ASCII
			r, size := utf8.DecodeRune(d[p:])
			if r == utf8.RuneError && size == 1 {
				return p, false
			}
			p += size
		}
	}
}

// quickNumber checks the number that starts at d[p] and returns the index after it.
func quickNumber(d []byte, p int) (int, bool) {
	if d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && d[p] >= '1' && d[p] <= '9':
		p = digits(d, p+1)
	default:
		return p, false
	}
	if p < len(d) && d[p] == '.' {
		q := digits(d, p+1)
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
		q := digits(d, p)
		if q == p {
			return p, false
		}
		p = q
	}
	return p, true
}
