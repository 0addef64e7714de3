package sora

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting: getStats() reports nest three or four levels deep, and a
// bound keeps a hostile body from costing more than its bytes.
const maxDepth = 64

// kind is the JSON type of a scanned value.
type kind uint8

const (
	kindInvalid kind = iota
	kindObject
	kindArray
	kindString
	kindNumber
	kindBool
	kindNull
)

var kindNames = [...]string{"invalid", "an object", "an array", "a string", "a number", "a boolean", "null"}

func (k kind) String() string { return kindNames[k] }

// scanner walks a JSON document once without allocating. It checks the grammar, UTF-8 in
// strings and the nesting depth; callers interpret the values they care about and skip the
// rest.
type scanner struct {
	data []byte
	pos  int
	err  *FieldError
	slow bool // never take quickSkip: the tests compare the two ways
}

// fail records the first error. The field name may view the body's bytes (keyString), so
// it is copied: the caller may reuse the body once Validate returned.
func (s *scanner) fail(field, msg string) {
	if s.err == nil {
		s.err = &FieldError{Field: strings.Clone(field), Msg: msg}
	}
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// consume skips the byte c (after spaces) and reports whether it was there.
func (s *scanner) consume(c byte) bool {
	if s.peek() == c {
		s.pos++
		return true
	}
	return false
}

// skip scans one value of any type. For strings it returns the raw contents between the
// quotes and whether they hold escapes.
func (s *scanner) skip(field string, depth int) (k kind, raw []byte, escaped bool) {
	switch c := s.peek(); {
	case (c == '{' || c == '[') && s.err == nil && !s.slow:
		// The common case, a well-formed container, in one tight loop; otherwise the
		// cases below go over it again and say what is wrong.
		if end, ok := quickSkip(s.data, s.pos, depth); ok {
			s.pos = end
			if c == '{' {
				return kindObject, nil, false
			}
			return kindArray, nil, false
		}
	}
	switch c := s.peek(); {
	case c == '{':
		if depth >= maxDepth {
			s.fail(field, "nesting deeper than 64 levels")
			return kindInvalid, nil, false
		}
		s.pos++
		s.members(field, func(string, []byte, bool) bool { return s.skipOK(field, depth+1) })
		return kindObject, nil, false
	case c == '[':
		if depth >= maxDepth {
			s.fail(field, "nesting deeper than 64 levels")
			return kindInvalid, nil, false
		}
		s.pos++
		s.elements(field, func(int) bool { return s.skipOK(field, depth+1) })
		return kindArray, nil, false
	case c == '"':
		raw, escaped = s.str(field)
		return kindString, raw, escaped
	case c == '-' || (c >= '0' && c <= '9'):
		s.number(field)
		return kindNumber, nil, false
	case c == 't':
		return s.literal(field, "true", kindBool), nil, false
	case c == 'f':
		return s.literal(field, "false", kindBool), nil, false
	case c == 'n':
		return s.literal(field, "null", kindNull), nil, false
	case c == 0:
		s.fail(field, "unexpected end of JSON")
	default:
		s.fail(field, "invalid JSON: unexpected character")
	}
	return kindInvalid, nil, false
}

func (s *scanner) skipOK(field string, depth int) bool {
	s.skip(field, depth)
	return s.err == nil
}

// members scans an object whose '{' was consumed, calling member for each key with the
// scanner positioned at the value. member must scan the value and return false to stop.
func (s *scanner) members(field string, member func(key string, rawKey []byte, escaped bool) bool) {
	if s.consume('}') {
		return
	}
	for s.err == nil {
		if s.peek() != '"' {
			s.fail(field, "invalid JSON: object key must be a string")
			return
		}
		raw, escaped := s.str(field)
		if s.err != nil {
			return
		}
		if !s.consume(':') {
			s.fail(field, "invalid JSON: missing ':' after object key")
			return
		}
		if !member(keyString(raw, escaped), raw, escaped) || s.err != nil {
			return
		}
		if s.consume('}') {
			return
		}
		if !s.consume(',') {
			s.fail(field, "invalid JSON: missing ',' or '}' in object")
			return
		}
	}
}

// elements scans an array whose '[' was consumed, calling element for each index.
func (s *scanner) elements(field string, element func(i int) bool) {
	if s.consume(']') {
		return
	}
	for i := 0; s.err == nil; i++ {
		if !element(i) || s.err != nil {
			return
		}
		if s.consume(']') {
			return
		}
		if !s.consume(',') {
			s.fail(field, "invalid JSON: missing ',' or ']' in array")
			return
		}
	}
}

// keyString returns a key for comparison. Keys are nearly always plain ASCII; an escaped
// key is decoded (allocating) so that "\u0074ype" still means "type".
func keyString(raw []byte, escaped bool) string {
	if !escaped {
		return unsafeString(raw)
	}
	return string(unescape(nil, raw))
}

// plainByte marks the bytes that stand for themselves inside a JSON string: not a quote,
// a backslash, a control character or part of a multi-byte UTF-8 sequence.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainPrefix returns how many of the eight bytes of x, read little-endian (the first
// byte lowest), are plain (see plainByte) before the first that is not. It uses the exact
// tests of "Bit Twiddling Hacks" (https://graphics.stanford.edu/~seander/bithacks.html,
// "Determine if a word has a byte less than n"): (v - ones*n) &^ v sets the high bit of a
// byte below n, and of none below the lowest such byte; a quote or a backslash is a zero
// byte after an XOR; a byte with its high bit set is not ASCII.
func plainPrefix(x uint64) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, b := x^(ones*'"'), x^(ones*'\\')
	m := (((x - ones*0x20) &^ x) | ((q - ones) &^ q) | ((b - ones) &^ b) | x) & highs
	return bits.TrailingZeros64(m) >> 3 // 8 when m is 0
}

// plainRun returns the index of the first byte at or after d[p] that is not plain.
func plainRun(d []byte, p int) int {
	for p+8 <= len(d) {
		k := plainPrefix(binary.LittleEndian.Uint64(d[p:]))
		p += k
		if k < 8 {
			return p
		}
	}
	for p < len(d) && plainByte[d[p]] {
		p++
	}
	return p
}

// str scans a string, checking escapes and UTF-8, and returns its raw contents.
func (s *scanner) str(field string) (raw []byte, escaped bool) {
	s.pos++ // opening quote
	start := s.pos
	for s.pos < len(s.data) {
		// Most of a string is plain ASCII: skip it eight bytes at a time.
		d, i := s.data, plainRun(s.data, s.pos)
		s.pos = i
		if i >= len(d) {
			break
		}
		c := d[i]
		switch {
		case c == '"':
			raw = s.data[start:s.pos]
			s.pos++
			return raw, escaped
		case c == '\\':
			escaped = true
			if !s.escape(field) {
				return nil, false
			}
		case c < 0x20:
			s.fail(field, "invalid JSON: control character in string")
			return nil, false
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				s.fail(field, "invalid UTF-8 in string")
				return nil, false
			}
			s.pos += n
		}
	}
	s.fail(field, "invalid JSON: unterminated string")
	return nil, false
}

func (s *scanner) escape(field string) bool {
	if s.pos+1 >= len(s.data) {
		s.fail(field, "invalid JSON: unterminated string")
		return false
	}
	switch s.data[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return true
	case 'u':
		if s.pos+6 > len(s.data) {
			s.fail(field, "invalid JSON: short \\u escape")
			return false
		}
		for _, h := range s.data[s.pos+2 : s.pos+6] {
			if hexVal(h) < 0 {
				s.fail(field, "invalid JSON: bad \\u escape")
				return false
			}
		}
		s.pos += 6
		return true
	}
	s.fail(field, "invalid JSON: bad escape in string")
	return false
}

// number scans a number per the JSON grammar.
func (s *scanner) number(field string) {
	end, ok := quickNumber(s.data, s.pos)
	if !ok {
		s.fail(field, "invalid JSON: bad number")
		return
	}
	s.pos = end
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) literal(field, lit string, k kind) kind {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		s.fail(field, "invalid JSON: unexpected literal")
		return kindInvalid
	}
	s.pos += len(lit)
	return k
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape appends the decoded form of a raw string that str accepted.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(raw[i+1:]))
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := rune(hex4(raw[i+3:])); lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func hex4(b []byte) int {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}
