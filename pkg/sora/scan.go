package sora

import (
	"strings"

	"kohaku/pkg/jsonscan"
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
// strings and the nesting depth, and words the first error; callers interpret the values
// they care about and skip the rest.
type scanner struct {
	data []byte
	pos  int
	err  error // the first problem: a *FieldError or a *LimitError
	slow bool  // never take the Walker: the tests compare the two ways
}

// fail records the first error. The field name may view the body's bytes (keyString), so
// it is copied: the caller may reuse the body once Validate returned.
func (s *scanner) fail(field, msg string) {
	if s.err == nil {
		s.err = &FieldError{Field: strings.Clone(field), Msg: msg}
	}
}

// failLimit records a *LimitError as the first error; its field never views the body.
func (s *scanner) failLimit(e *LimitError) {
	if s.err == nil {
		s.err = e
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.pos = jsonscan.SkipSpace(s.data, s.pos)
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
		w := jsonscan.Walker{MaxDepth: maxDepth - depth}
		if end, _, ok := w.Value(s.data, s.pos); ok {
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
	return string(jsonscan.Unescape(nil, raw))
}

// stringFaults words the faults of jsonscan.String.
var stringFaults = [...]string{
	jsonscan.Unterminated: "invalid JSON: unterminated string",
	jsonscan.ControlChar:  "invalid JSON: control character in string",
	jsonscan.BadUTF8:      "invalid UTF-8 in string",
	jsonscan.ShortEscape:  "invalid JSON: short \\u escape",
	jsonscan.BadHexEscape: "invalid JSON: bad \\u escape",
	jsonscan.BadEscape:    "invalid JSON: bad escape in string",
}

// str scans a string, checking escapes and UTF-8, and returns its raw contents.
func (s *scanner) str(field string) (raw []byte, escaped bool) {
	end, f, fault := jsonscan.String(s.data, s.pos)
	if fault != jsonscan.NoFault {
		s.fail(field, stringFaults[fault])
		return nil, false
	}
	raw = s.data[s.pos+1 : end-1]
	s.pos = end
	return raw, f&jsonscan.Escaped != 0
}

// number scans a number per the JSON grammar.
func (s *scanner) number(field string) {
	end, _, ok := jsonscan.Number(s.data, s.pos)
	if !ok {
		s.fail(field, "invalid JSON: bad number")
		return
	}
	s.pos = end
}

func (s *scanner) literal(field, lit string, k kind) kind {
	if !jsonscan.Literal(s.data, s.pos, lit) {
		s.fail(field, "invalid JSON: unexpected literal")
		return kindInvalid
	}
	s.pos += len(lit)
	return k
}
