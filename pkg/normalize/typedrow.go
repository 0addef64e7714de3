package normalize

import "encoding/json"

// typedRow fills the leading time and the typed columns of a row of l from b.fields and
// collects the members without a column in b.extra. JSON gives the last of repeated
// members, so the members are taken from the last one back, skipping names already taken.
func (b *builder) typedRow(l *layout) []any {
	row := b.newRow(len(l.columns))
	row[colTime] = b.time
	if cap(b.done) < len(l.columns) {
		b.done = make([]bool, len(l.columns))
	}
	b.done = b.done[:len(l.columns)]
	clear(b.done)
	b.extra.reset(b.fields)
	for k := len(b.fields) - 1; k >= 0; k-- {
		fd := b.fields[k]
		switch col := l.places.of(fd.key); {
		case col == memberSkip:
			continue
		case col >= 0:
			if b.done[col] {
				continue
			}
			b.done[col] = true
			if v := b.value(fd, l.columns[col].kind); v != nil {
				row[col] = v
				continue
			}
		case b.extra.has(fd.key):
			continue
		}
		b.extra.add(k)
	}
	return row
}

// finish adds the extra column and the row, whose stats_id is id, of the element at hand,
// which ends at end.
func (b *builder) finish(l *layout, id string, row []any, end int) error {
	for k := range row {
		if row[k] != nil && l.columns[k].kind == kindJSON && k != l.extra {
			v, err := b.rawJSON(row[k].([]byte))
			if err != nil {
				return &DecodeError{Err: err}
			}
			row[k] = v
		}
	}
	if b.extra.len() > 0 {
		b.extra.reverse() // collected last member first
		x, err := jsonObject(&b.extra, b.surrogates)
		if err != nil {
			return &DecodeError{Err: err}
		}
		row[l.extra] = x
	}
	b.add(l, id, row, end)
	return nil
}

// value is the package's value, kept in b.vals rather than copied one by one.
func (b *builder) value(fd rawMember, k valueKind) any {
	switch {
	case k == kindText && fd.tok == tokString:
		return b.text(fd)
	case k == kindInt && fd.tok == tokNumber:
		if v, ok := parseInt(fd.raw); ok {
			return b.vals.int(v)
		}
		return nil
	case k == kindFloat && fd.tok == tokNumber:
		if v, ok := parseFloat(fd.raw); ok {
			return b.vals.float(v)
		}
		return nil
	}
	return value(fd, k)
}

// text returns the string value of fd in an interface.
func (b *builder) text(fd rawMember) any {
	if fd.esc {
		return fd.str() // rare: decoded on its own
	}
	return b.vals.text(fd.raw[1 : len(fd.raw)-1])
}

// value returns the Go value of fd for a column of kind k, or nil when the JSON value does
// not fit the column exactly.
func value(fd rawMember, k valueKind) any {
	switch k {
	case kindInt:
		if fd.tok == tokNumber {
			if v, ok := parseInt(fd.raw); ok {
				return v
			}
		}
	case kindFloat:
		if fd.tok == tokNumber {
			if v, ok := parseFloat(fd.raw); ok {
				return v
			}
		}
	case kindText:
		if fd.tok == tokString {
			return fd.str()
		}
	case kindBool:
		switch fd.tok {
		case tokTrue:
			return true
		case tokFalse:
			return false
		}
	case kindJSON:
		if fd.tok == tokObject {
			return fd.raw // copied by finish
		}
	}
	return nil
}

// rawJSON returns a copy of the JSON value v that jsonb accepts.
func (b *builder) rawJSON(v []byte) ([]byte, error) {
	if b.surrogates {
		return normalizeJSON(v)
	}
	return append([]byte(nil), v...), nil
}

// jsonObject returns the JSON object of the members of set, nil when there are none.
func jsonObject(set *memberSet, surrogates bool) ([]byte, error) {
	if set.len() == 0 {
		return nil, nil
	}
	n := 2
	for fd := range set.all() {
		n += len(fd.key) + len(fd.raw) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	k := 0
	for fd := range set.all() {
		if k > 0 {
			out = append(out, ',')
		}
		k++
		out = appendKey(out, fd.key)
		out = append(out, ':')
		if surrogates {
			v, err := normalizeJSON(fd.raw)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		} else {
			out = append(out, fd.raw...)
		}
	}
	return append(out, '}'), nil
}

// appendKey appends s as a JSON string.
func appendKey(out []byte, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c == '"' || c == '\\' {
			q, _ := json.Marshal(string(s)) // cannot fail for a string
			return append(out, q...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}
