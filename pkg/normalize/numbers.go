package normalize

import (
	"bytes"
	"math"
	"strconv"
)

// Numbers keep their exact value: a JSON number goes into a typed column only when the
// column's Go type holds exactly the value that the text denotes; otherwise the member is
// kept, as written, in extra.

// parseInt returns the value of a JSON number for a bigint column: an integer literal (no
// fraction, no exponent) within int64.
func parseInt(raw []byte) (int64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return slowParseInt(raw)
	}
	// Eighteen digits cannot overflow: most counters take this loop, not strconv.
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent
		}
		v = v*10 + int64(c-'0')
	}
	if len(digits) < len(raw) {
		v = -v
	}
	return v, true
}

// slowParseInt is parseInt for any number.
func slowParseInt(raw []byte) (int64, bool) {
	if exponentAt(raw) >= 0 || bytes.IndexByte(raw, '.') >= 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	return v, err == nil
}

// parseFloat returns the value of a JSON number for a double precision column: one whose
// decimal value is that of a float64, so that writing the float64 back (shortest form, as
// browsers and encoding/json do) gives the same number. 0.1 qualifies; 1e400 and
// 0.10000000000000000001 do not.
func parseFloat(raw []byte) (float64, bool) {
	if v, ok, sure := quickFloat(raw); sure {
		return v, ok
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	if fewDigits(raw) {
		return v, true
	}
	// Browsers write doubles in the shortest form, as AppendFloat does: most numbers are
	// then the same text, and only the others need comparing by value.
	var buf [32]byte
	if exponentAt(raw) < 0 && bytes.Equal(raw, strconv.AppendFloat(buf[:0], v, 'f', -1, 64)) {
		return v, true
	}
	return v, canonicalNumber(raw) == canonicalNumber(strconv.AppendFloat(buf[:0], v, 'e', -1, 64))
}

// pow10 holds the powers of ten that a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// quickFloat is parseFloat for the numbers that browsers write most, decimals without an
// exponent whose digits make an integer below 2^53, with at most 22 after the point; sure
// is false for the others, which parseFloat reads the long way. Such a decimal is the
// integer of its digits divided by a power of ten, both exact in a float64, so that one
// division rounds it exactly as strconv.ParseFloat does. It is the float's shortest form
// when it has at most 15 significant digits (see fewDigits), or when no other decimal of as
// few digits rounds to that float: when the place of its last digit exceeds the float's
// spacing there (browsers' timestamps, 16 digits, are such numbers).
func quickFloat(raw []byte) (v float64, ok, sure bool) {
	d := raw
	neg := len(d) > 0 && d[0] == '-'
	if neg {
		d = d[1:]
	}
	var m uint64
	digits, frac := 0, -1 // frac counts the digits after the point, -1 before it
	first, last := -1, -1 // the indexes of the first and last nonzero digit
	for _, c := range d {
		switch {
		case c >= '0' && c <= '9':
			if digits == 19 {
				return 0, false, false
			}
			m = m*10 + uint64(c-'0')
			if c != '0' {
				if first < 0 {
					first = digits
				}
				last = digits
			}
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.':
			frac = 0
		default:
			return 0, false, false // an exponent
		}
	}
	k := max(frac, 0)
	if digits == 0 || m >= 1<<53 || k >= len(pow10) {
		return 0, false, false
	}
	v = float64(m) / pow10[k]
	if neg {
		v = -v
	}
	if first < 0 || last-first < 15 {
		return v, true, true
	}
	// The last nonzero digit stands for 10^-place; the float's spacing is at most 1 below
	// 2^53, so a place of 10 or more exceeds it.
	place := k - (digits - 1 - last)
	a := math.Abs(v)
	if place < 0 || (place < len(pow10) && (math.Nextafter(a, math.Inf(1))-a)*pow10[place] < 1) {
		return v, true, true
	}
	return 0, false, false
}

// exponentAt returns the index of the exponent mark of a JSON number, -1 if it has none.
func exponentAt(raw []byte) int {
	for k, c := range raw {
		if c == 'e' || c == 'E' {
			return k
		}
	}
	return -1
}

// fewDigits reports whether raw has no exponent, at most 15 significant digits and a
// length that keeps it in float64's normal range. Such a decimal survives the round trip
// through float64 (IEEE 754 binary64 guarantees 15 decimal digits), so it needs no check.
func fewDigits(raw []byte) bool {
	if len(raw) > 24 {
		return false
	}
	first, last := -1, -1 // the first and last nonzero digit
	for k, c := range raw {
		switch {
		case c == 'e' || c == 'E':
			return false
		case c >= '1' && c <= '9':
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 {
		return true // zero
	}
	n := last - first + 1
	if bytes.IndexByte(raw[first:last+1], '.') >= 0 {
		n--
	}
	return n <= 15
}

// canonicalNumber returns a form of the JSON number raw that is equal for two numbers
// exactly when their values are equal: the significant digits, then the exponent of the
// first digit. The sign of zero is dropped, as -0 equals 0. An exponent too large for an
// int gives an approximate form, which only numbers far beyond float64 have.
func canonicalNumber(raw []byte) string {
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	mant, exp := raw, 0
	if k := exponentAt(raw); k >= 0 {
		mant = raw[:k]
		e, err := strconv.Atoi(string(raw[k+1:]))
		if err != nil {
			e = int(^uint(0) >> 2) // beyond any real exponent; keeps the sign below
			if bytes.IndexByte(raw[k+1:], '-') >= 0 {
				e = -e
			}
		}
		exp = e
	}
	intPart, frac := mant, []byte(nil)
	if k := bytes.IndexByte(mant, '.'); k >= 0 {
		intPart, frac = mant[:k], mant[k+1:]
	}
	digits := make([]byte, 0, len(intPart)+len(frac))
	digits = append(digits, intPart...)
	digits = append(digits, frac...)
	point := len(intPart) // the decimal point sits after this many digits
	lead := 0
	for lead < len(digits) && digits[lead] == '0' {
		lead++
	}
	digits = bytes.TrimRight(digits[lead:], "0")
	if len(digits) == 0 {
		return "0"
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + string(digits) + "e" + strconv.Itoa(point-lead+exp)
}

// fitsNumeric reports whether PostgreSQL's numeric type, which stores jsonb's numbers,
// can hold the JSON number raw: at most 131072 digits before the decimal point and 16383
// after it, counting the fraction as written (trailing zeros included, and zero too: 0.0
// has one), and an exponent below 1073741823 in size, which PostgreSQL refuses whatever
// the digits, zero included (numeric.c, set_var_from_str: "value overflows numeric
// format"). schema's tests hold this to a real server.
func fitsNumeric(raw []byte) bool {
	const maxWeight, maxScale = 131072, 16383
	const maxExponent = math.MaxInt32 / 2 // PostgreSQL's INT_MAX / 2: this or more is refused
	if len(raw) > 0 && raw[0] == '-' {
		raw = raw[1:]
	}
	mant, exp := raw, 0
	if k := exponentAt(raw); k >= 0 {
		mant = raw[:k]
		e, err := strconv.Atoi(string(raw[k+1:]))
		if err != nil || e >= maxExponent || e <= -maxExponent {
			return false
		}
		exp = e
	}
	intPart, frac := mant, []byte(nil)
	if k := bytes.IndexByte(mant, '.'); k >= 0 {
		intPart, frac = mant[:k], mant[k+1:]
	}
	if scale := len(frac) - exp; scale > maxScale {
		return false
	}
	intPart = bytes.TrimLeft(intPart, "0")
	var weight int // the number of digits before the decimal point
	switch {
	case len(intPart) > 0:
		weight = len(intPart) + exp
	default:
		z := len(frac) - len(bytes.TrimLeft(frac, "0"))
		if z == len(frac) {
			return true // zero
		}
		weight = exp - z
	}
	return weight <= maxWeight
}
