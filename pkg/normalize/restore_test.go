package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// restore gives back the stats element that row, a row of table as Message made it or as
// read back from the database, was made from: a map that encoding/json turns into an
// object equal to the original element, numbers included (id, type and timestamp come
// back from the leading columns). Values of jsonb columns must be raw JSON ([]byte,
// json.RawMessage or string) for numbers to stay exact: select them as text, or scan them
// into []byte.
func restore(table string, row []any) (map[string]any, error) {
	l := tables.byName[table]
	if l == nil {
		return nil, fmt.Errorf("normalize: restore: unknown table %q", table)
	}
	if len(row) != len(l.columns) {
		return nil, fmt.Errorf("normalize: restore %s: %d values for %d columns", table, len(row), len(l.columns))
	}
	if l == tables.other {
		raw, err := rawOf(row[l.extra])
		if err != nil {
			return nil, fmt.Errorf("normalize: restore %s: stats: %w", table, err)
		}
		if raw == nil {
			return nil, fmt.Errorf("normalize: restore %s: stats is NULL", table)
		}
		var out map[string]any
		if err := decodeJSON(raw, &out); err != nil {
			return nil, fmt.Errorf("normalize: restore %s: stats: %w", table, err)
		}
		return out, nil
	}

	out := make(map[string]any, len(l.columns))
	switch {
	case l == tables.erlang:
		out["type"] = erlangVMType
	case l.statsType >= 0:
		out["type"] = row[l.statsType]
	default:
		out["type"] = l.types[0]
	}
	if l != tables.erlang {
		out["id"] = row[colStatsID]
	}
	for k, c := range l.columns {
		if c.member == "" || row[k] == nil || k == l.statsType {
			continue
		}
		v, err := restoreValue(row[k], c.kind)
		if err != nil {
			return nil, fmt.Errorf("normalize: restore %s: %s: %w", table, c.name, err)
		}
		out[c.member] = v
	}
	if row[l.extra] != nil {
		raw, err := rawOf(row[l.extra])
		if err != nil {
			return nil, fmt.Errorf("normalize: restore %s: extra: %w", table, err)
		}
		var extra map[string]json.RawMessage
		if err := decodeJSON(raw, &extra); err != nil {
			return nil, fmt.Errorf("normalize: restore %s: extra: %w", table, err)
		}
		for k, v := range extra {
			out[k] = v
		}
	}
	return out, nil
}

// restoreValue converts v, a value of a column of kind k, to its JSON-ready form.
func restoreValue(v any, k valueKind) (any, error) {
	switch k {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		case int:
			return int64(x), nil
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
	case kindText:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case kindBool:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case kindJSON:
		return rawOf(v)
	}
	return nil, fmt.Errorf("unexpected %T for %s", v, k.sqlType())
}

// rawOf returns the JSON text of a jsonb value. A decoded value (map[string]any) is
// encoded again, which keeps numbers exact only if they were decoded as json.Number.
func rawOf(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return json.RawMessage(x), nil
	case json.RawMessage:
		return x, nil
	case string:
		return json.RawMessage(x), nil
	default:
		return json.Marshal(x)
	}
}

// decodeJSON decodes data into v keeping numbers as json.Number, so they stay exact.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
