package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"kohaku/pkg/jsonscan"
)

// jsonbEqual compares two JSON texts as PostgreSQL compares jsonb values: objects by their
// members whatever their order (the last of a repeated key counts), strings after their
// escapes are decoded, numbers by value as numeric does (1, 1.0 and 1e0 are equal). ok is
// false when Go cannot be sure to agree with the database (a text that is not valid JSON
// or UTF-8, an exponent too large to normalize), and the database must compare.
func jsonbEqual(a, b []byte) (equal, ok bool) {
	if bytes.Equal(a, b) {
		return true, true
	}
	if !utf8.Valid(a) || !utf8.Valid(b) {
		return false, false
	}
	if namesDiffer(a, b) {
		return false, true
	}
	x, err := decodeJSON(a)
	if err != nil {
		return false, false
	}
	y, err := decodeJSON(b)
	if err != nil {
		return false, false
	}
	return jsonValuesEqual(x, y)
}

// namesDiffer reports whether a and b are JSON objects with different sets of member
// names, which makes them unequal: without decoding them, for a report sent again with
// other content, where that is what a conflicting row's extra mostly is (a member more or
// less). It reports false when it cannot tell, for texts that are not objects or whose
// names have escapes, which only decoding compares.
func namesDiffer(a, b []byte) bool {
	x, ok := memberNames(a)
	if !ok {
		return false
	}
	y, ok := memberNames(b)
	return ok && !slices.EqualFunc(x, y, bytes.Equal)
}

// memberNames returns the distinct member names of the JSON object d, sorted, or false
// when d is not an object or a name has an escape.
func memberNames(d []byte) ([][]byte, bool) {
	p := jsonscan.SkipSpace(d, 0)
	if p >= len(d) || d[p] != '{' {
		return nil, false
	}
	w := jsonscan.Walker{MaxDepth: jsonscan.StdMaxDepth}
	var names [][]byte
	p = jsonscan.SkipSpace(d, p+1)
	for p < len(d) && d[p] != '}' {
		if len(names) > 0 {
			if d[p] != ',' {
				return nil, false
			}
			p = jsonscan.SkipSpace(d, p+1)
		}
		if p >= len(d) || d[p] != '"' {
			return nil, false
		}
		end, f, fault := jsonscan.String(d, p)
		if fault != jsonscan.NoFault || f&jsonscan.Escaped != 0 {
			return nil, false
		}
		names = append(names, d[p+1:end-1])
		if p = jsonscan.SkipSpace(d, end); p >= len(d) || d[p] != ':' {
			return nil, false
		}
		end, _, ok := w.Value(d, p+1)
		if !ok {
			return nil, false
		}
		p = jsonscan.SkipSpace(d, end)
	}
	if p >= len(d) || jsonscan.SkipSpace(d, p+1) != len(d) {
		return nil, false
	}
	slices.SortFunc(names, bytes.Compare)
	return slices.CompactFunc(names, bytes.Equal), true
}

func decodeJSON(d []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func jsonValuesEqual(x, y any) (equal, ok bool) {
	switch a := x.(type) {
	case map[string]any:
		b, isObj := y.(map[string]any)
		if !isObj || len(a) != len(b) {
			return false, true
		}
		for k, va := range a {
			vb, has := b[k]
			if !has {
				return false, true
			}
			if eq, ok := jsonValuesEqual(va, vb); !eq || !ok {
				return eq, ok
			}
		}
		return true, true
	case []any:
		b, isArr := y.([]any)
		if !isArr || len(a) != len(b) {
			return false, true
		}
		for k := range a {
			if eq, ok := jsonValuesEqual(a[k], b[k]); !eq || !ok {
				return eq, ok
			}
		}
		return true, true
	case json.Number:
		b, isNum := y.(json.Number)
		if !isNum {
			return false, true
		}
		da, okA := parseDecimal(string(a))
		db, okB := parseDecimal(string(b))
		if !okA || !okB {
			return false, false
		}
		return da == db, true
	}
	return x == y, true // strings, booleans, nil
}

// decimal is a JSON number reduced to a canonical form: its significant digits without
// leading or trailing zeros and the power of ten of the last of them. Zero has no digits.
type decimal struct {
	negative bool
	digits   string
	exp      int64
}

// parseDecimal reduces a JSON number (as the grammar accepts it) to its canonical form. ok
// is false for an exponent of more than nine digits, which no stored value has.
func parseDecimal(s string) (d decimal, ok bool) {
	if strings.HasPrefix(s, "-") {
		d.negative, s = true, s[1:]
	}
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp {
		expPart = strings.TrimPrefix(expPart, "+")
		if len(strings.TrimLeft(strings.TrimPrefix(expPart, "-"), "0")) > 9 {
			return decimal{}, false
		}
		e, err := strconv.ParseInt(expPart, 10, 64)
		if err != nil {
			return decimal{}, false
		}
		d.exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	d.exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	d.exp += int64(len(digits) - len(trimmed))
	d.digits = strings.TrimLeft(trimmed, "0")
	if d.digits == "" {
		return decimal{}, true // every zero is the same zero, -0 too
	}
	return d, true
}
