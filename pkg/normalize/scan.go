package normalize

import (
	"bytes"
	"encoding/json"
	"slices"

	"kohaku/pkg/jsonscan"
)

// The scanner walks a body that checkBody accepted, without building a tree: a stats
// element becomes a list of members whose values are slices of the body, so that the
// common path decodes each value once, straight into its column.

// token is the JSON type of a value, from its first byte.
type token uint8

const (
	tokString token = iota + 1
	tokNumber
	tokObject
	tokArray
	tokTrue
	tokFalse
	tokNull
)

// tokenAt returns the type of the value that starts at d[p].
func tokenAt(d []byte, p int) token {
	switch d[p] {
	case '"':
		return tokString
	case '{':
		return tokObject
	case '[':
		return tokArray
	case 't':
		return tokTrue
	case 'f':
		return tokFalse
	case 'n':
		return tokNull
	}
	return tokNumber
}

// scanner reads values out of a body that checkBody accepted: valid JSON in valid UTF-8.
type scanner struct {
	d     []byte
	facts *bodyFacts // where some containers end, from checkBody
}

// stringEnd returns the index after the string that starts at d[p] (a quote), and whether
// it holds an escape. The string was checked already (checkBody).
func stringEnd(d []byte, p int) (int, bool) {
	end, f, _ := jsonscan.String(d, p)
	return end, f&jsonscan.Escaped != 0
}

// stringEnd is the package's stringEnd for the body. In a body without escapes, which
// browsers' reports are, a string ends at the next quote: one IndexByte instead of a
// second check of every byte.
func (sc *scanner) stringEnd(p int) (int, bool) {
	if sc.facts != nil && !sc.facts.escaped {
		return p + 2 + bytes.IndexByte(sc.d[p+1:], '"'), false
	}
	return stringEnd(sc.d, p)
}

// valueEnd returns the index after the value that starts at d[p].
func (sc *scanner) valueEnd(p int) int {
	d := sc.d
	switch tokenAt(d, p) {
	case tokString:
		end, _ := sc.stringEnd(p)
		return end
	case tokTrue, tokNull:
		return p + 4
	case tokFalse:
		return p + 5
	case tokNumber:
		return sc.numberEnd(p)
	}
	// An object or array: walk to the matching bracket, unless checkBody saw where it
	// ends.
	if e, ok := sc.facts.end(p); ok {
		return e
	}
	depth := 0
	for {
		switch c := d[p]; {
		case c == '"':
			p, _ = sc.stringEnd(p)
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return p + 1
			}
		case c == '-' || (c >= '0' && c <= '9'):
			p = sc.numberEnd(p)
			continue
		}
		p++
	}
}

// numberEnd returns the index after the number that starts at d[p].
func (sc *scanner) numberEnd(p int) int {
	d := sc.d
	for p < len(d) && isNumberByte(d[p]) {
		p++
	}
	return p
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// rawMember is one scanned member of an object: its decoded name and its raw value. The
// name is a slice of the body unless it has escapes, so that reading a member allocates
// nothing.
type rawMember struct {
	key []byte
	raw []byte
	pos int // where raw starts in the body
	tok token
	esc bool // raw is a string with an escape
}

// str returns the text of fd's value, a string.
func (fd rawMember) str() string { return decodeString(fd.raw, fd.esc) }

// object appends the members of the object that starts at d[p] to fs and returns them and
// the index after the object.
func (sc *scanner) object(p int, fs []rawMember) ([]rawMember, int) {
	d := sc.d
	p = jsonscan.SkipSpace(d, p+1)
	if d[p] == '}' {
		return fs, p + 1
	}
	for {
		key, v, vEnd, vEsc := sc.member(p)
		if len(fs) == cap(fs) {
			// Double: append grows a large slice by a quarter, which for an object of
			// many members allocates about five times its final size on the way.
			fs = slices.Grow(fs, max(len(fs), 16))
		}
		fs = append(fs, rawMember{key: key, raw: d[v:vEnd], pos: v, tok: tokenAt(d, v), esc: vEsc})
		p = jsonscan.SkipSpace(d, vEnd)
		if d[p] == '}' {
			return fs, p + 1
		}
		p = jsonscan.SkipSpace(d, p+1) // the comma
	}
}

// member reads the member that starts at d[p]: its decoded name, where its value starts
// and ends, and whether the value is a string with an escape.
func (sc *scanner) member(p int) (key []byte, value, end int, esc bool) {
	d := sc.d
	if kEnd, end, ok := jsonscan.Member(d, p); ok {
		return d[p+1 : kEnd-1], kEnd + 1, end, false // most members: read at once
	}
	kEnd, kEsc := sc.stringEnd(p)
	key = d[p+1 : kEnd-1]
	if kEsc {
		key = jsonscan.Unescape(nil, key)
	}
	value = jsonscan.SkipSpace(d, jsonscan.SkipSpace(d, kEnd)+1) // past the colon
	if tokenAt(d, value) == tokString {
		end, esc = sc.stringEnd(value)
	} else {
		end = sc.valueEnd(value)
	}
	return key, value, end, esc
}

// decodeString returns the text of the string token raw, which checkBody accepted.
func decodeString(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	// Escapes are rare in stats; Unescape gives them encoding/json's meaning (a lone
	// surrogate becomes U+FFFD), as in the tests' reference decoding.
	return string(jsonscan.Unescape(nil, raw[1:len(raw)-1]))
}

// normalizeJSON rewrites the raw JSON value v the way encoding/json reads it (a lone
// surrogate escape becomes U+FFFD), keeping numbers as written, so that jsonb accepts it.
func normalizeJSON(v []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
