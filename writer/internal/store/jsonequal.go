package store

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
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

func decodeJSON(d []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
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
