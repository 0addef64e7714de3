package jsonscan

// Number checks the number that starts at d[p], a minus or a digit, against JSON's
// grammar (no leading zeros, no lone point, digits after a point and an exponent mark).
// It returns the index after the number and whether it has an exponent, which is all a
// caller needs to tell the numbers whose size it must read; ok is false, with end at the
// offending byte, when the grammar is not met.
func Number(d []byte, p int) (end int, exponent, ok bool) {
	if d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && d[p] >= '1' && d[p] <= '9':
		p = digits(d, p+1)
	default:
		return p, false, false
	}
	if p < len(d) && d[p] == '.' {
		q := digits(d, p+1)
		if q == p+1 {
			return q, false, false
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
			return p, true, false
		}
		return q, true, true
	}
	return p, false, true
}

func digits(d []byte, p int) int {
	for p < len(d) && d[p] >= '0' && d[p] <= '9' {
		p++
	}
	return p
}
