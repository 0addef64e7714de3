package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// deadLetterSQL keeps a message that can never be stored. stream_seq is unique, so a
// poison message delivered again (its Term lost, or a replay) is kept once; RETURNING tells
// whether this call added it.
const deadLetterSQL = `INSERT INTO kohaku_dead_letter (stream_seq, subject, headers, body, error)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_seq) DO NOTHING
RETURNING stream_seq`

// deadLetter writes msgs[i] for each i in idx to kohaku_dead_letter and returns the rows it
// added, in order; those already present were added by an earlier delivery.
func deadLetter(ctx context.Context, tx pgx.Tx, idx []int, msgs []Message) ([]newDeadLetter, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	var b pgx.Batch
	for _, i := range idx {
		m := msgs[i]
		b.Queue(deadLetterSQL, int64(m.Seq), m.Subject, headersJSON(m.Header), m.Body, reason(m))
	}
	br := tx.SendBatch(ctx, &b)
	var out []newDeadLetter
	for _, i := range idx {
		var seq int64
		err := br.QueryRow().Scan(&seq)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Already a dead letter: logged and counted when it was added.
		case err != nil:
			br.Close()
			return nil, fmt.Errorf("dead-letter stream_seq %d: %w", msgs[i].Seq, err)
		default:
			out = append(out, newDeadLetter{index: i, reason: reason(msgs[i])})
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("dead-letter: %w", err)
	}
	return out, nil
}

// reason is the error text kept with a dead letter. PostgreSQL text holds neither NUL
// bytes nor invalid UTF-8, and the error may quote the body's bytes.
func reason(m Message) string {
	if m.Err == nil {
		return "message has no rows"
	}
	return clean(m.Err.Error())
}

// headersJSON encodes h as a JSON object of string arrays for the headers jsonb column.
func headersJSON(h map[string][]string) []byte {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		cvs := make([]string, len(vs))
		for i, v := range vs {
			cvs[i] = clean(v)
		}
		out[clean(k)] = cvs
	}
	b, err := json.Marshal(out)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// clean makes s storable in text and jsonb: valid UTF-8 without NUL (jsonb rejects \u0000).
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
