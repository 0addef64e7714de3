package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// member is one top-level member of a log line, both parts raw JSON as written: the key
// with its quotes.
type member struct {
	key, value []byte
}

// logLine is one line of rtc_stats.jsonl taken apart. Its slices point into the line.
type logLine struct {
	id       string   // the report's webhook request id
	envelope []member // the report's members, in the line's order
	data     []byte   // rtc_data: the RTCStats object
}

// Members of a line that belong to the line's element, not to its report. rtc_id,
// rtc_type and rtc_timestamp repeat what rtc_data holds.
const (
	keyData = "rtc_data"
	keyID   = "id"
)

var elementKeys = map[string]bool{"rtc_id": true, "rtc_type": true, "rtc_timestamp": true, keyData: true, "log_written": true}

// parseLine takes a log line apart. When it fails it still returns the id if the line
// has one before the place where it is cut or broken (a truncated line keeps its first
// members), so that the line can be counted to its report.
func parseLine(b []byte) (logLine, error) {
	var l logLine
	haveData := false
	err := members(b, func(key, value []byte) error {
		name, err := keyName(key)
		if err != nil {
			return err
		}
		switch {
		case name == keyID:
			l.id = "" // the last one counts, as in the webhook's body
			if err := json.Unmarshal(value, &l.id); err != nil || l.id == "" {
				return errors.New("id is not a non-empty string")
			}
		case name == keyData:
			haveData, l.data = true, value
			if value[0] != '{' {
				return errors.New("rtc_data is not a JSON object")
			}
			return nil
		case elementKeys[name]:
			return nil
		case name == "stats":
			// A webhook body, not a log line: its stats would clash with the rebuilt ones.
			return errors.New("a log line has no stats member (is this a webhook body?)")
		}
		l.envelope = append(l.envelope, member{key: key, value: value})
		return nil
	})
	// members finds where values end without checking them; json.Valid checks all.
	if !json.Valid(b) {
		return l, syntaxError(b)
	}
	switch {
	case err != nil:
		return l, err
	case l.id == "":
		return l, errors.New("no id")
	case !haveData:
		return l, errors.New("no rtc_data")
	}
	return l, nil
}

// syntaxError says what is wrong with b, which is not valid JSON.
func syntaxError(b []byte) error {
	var v json.RawMessage
	err := json.NewDecoder(bytes.NewReader(b)).Decode(&v)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("truncated: the line ends inside its JSON")
	case err != nil:
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return errors.New("not valid JSON: data after the object")
}

// keyName returns the decoded name of a raw key.
func keyName(key []byte) (string, error) {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key[1 : len(key)-1]), nil
	}
	var s string
	if err := json.Unmarshal(key, &s); err != nil {
		return "", fmt.Errorf("member name %s: %w", key, err)
	}
	return s, nil
}

// errMalformed stops members at a place where the object is broken or cut; parseLine
// then tells why from json.
var errMalformed = errors.New("malformed JSON")

// members calls fn with each top-level member of the JSON object b, in order, until fn
// fails. It finds where each value ends without checking what is inside, so that a line
// cut short still yields its members up to the cut.
func members(b []byte, fn func(key, value []byte) error) error {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i == len(b) || b[i] != '"' {
			return errMalformed
		}
		end := stringEnd(b, i)
		if end < 0 {
			return errMalformed
		}
		key := b[i:end]
		i = skipSpace(b, end)
		if i == len(b) || b[i] != ':' {
			return errMalformed
		}
		i = skipSpace(b, i+1)
		end = valueEnd(b, i)
		if end < 0 {
			return errMalformed
		}
		if err := fn(key, b[i:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		switch {
		case i < len(b) && b[i] == '}':
			return nil
		case i == len(b) || b[i] != ',':
			return errMalformed
		}
		i = skipSpace(b, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string at b[i], -1 when b
// ends first.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd returns the index after the JSON value at b[i], -1 when b ends first.
func valueEnd(b []byte, i int) int {
	if i == len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				i-- // the loop steps over the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	// A number, true, false or null: up to the next delimiter.
	for j := i; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if j == i {
				return -1 // no value
			}
			return j
		}
	}
	return -1 // a scalar that the line's end cuts: it may have gone on
}
