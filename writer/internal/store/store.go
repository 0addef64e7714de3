package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"kohaku/pkg/normalize"
)

// Message is one message to store: a stream message, or a report that the importer read
// from a log, shaped as the stream would carry it.
type Message struct {
	Seq          uint64              // stream sequence (an import's stand-in): the dead-letter key
	Subject      string              // stream subject
	ExporterType string              // message type, of either feed: the exporter_type label
	Header       map[string][]string // message headers, kept with a dead letter
	Body         []byte              // raw body, kept with a dead letter
	// Rows is what normalize.Message made of Body; nil when Err is set. Its Rejected
	// elements are kept as dead letters of their own, in the transaction of the rows, and
	// its Origins name the element of a row that conflicts.
	Rows *normalize.Rows
	// Err is why the body can never become rows (it cannot be decoded); such a message
	// is dead-lettered.
	Err error
}

// Result tells what Write did with a batch.
type Result struct {
	// Dead holds the indexes, in increasing order, of the messages that were written to
	// kohaku_dead_letter instead of being stored: they must be terminated, not acked.
	Dead []int
	// Inserted counts the rows added per table; rows already present are not counted.
	Inserted map[string]int
	// Duplicates counts the rows that were already present: in their table with the same
	// content (redelivery or replay), or as the conflict of an earlier delivery.
	Duplicates int
	// Conflicts counts the rows newly kept in kohaku_dead_letter (reason "conflict")
	// because their natural key already held a row with different content. Inserted (but
	// for sora_connection), Duplicates and Conflicts add up to the batch's rows.
	Conflicts int
	// DeadElements counts the stats elements newly kept in kohaku_dead_letter on their own:
	// those normalize set apart, and the conflicts. Their messages are stored, not dead.
	DeadElements int
	// Merged tells whether a unique violation made the batch go through the merge path.
	Merged bool

	added []deadLetter // the dead letters that are new, not an earlier delivery's
}

// NewStatsRows counts the stats rows that Write added: Inserted but for sora_connection,
// whose rows are upserted and are no stats rows. Duplicates counts stats rows only.
func (r Result) NewStatsRows() int {
	n := 0
	for table, v := range r.Inserted {
		if table != normalize.TableConnection {
			n += v
		}
	}
	return n
}

func (r *Result) add(o Result, offset int) {
	for _, d := range o.Dead {
		r.Dead = append(r.Dead, d+offset)
	}
	for _, a := range o.added {
		a.msg += offset
		r.added = append(r.added, a)
	}
	for t, n := range o.Inserted {
		r.Inserted[t] += n
	}
	r.Duplicates += o.Duplicates
	r.Conflicts += o.Conflicts
	r.DeadElements += o.DeadElements
	r.Merged = r.Merged || o.Merged
}

// Store writes batches of messages through a connection pool.
type Store struct {
	pool *pgxpool.Pool
	m    *metrics
	log  *slog.Logger
}

// New returns a Store writing through pool. It logs to log (nothing when nil) and registers
// its metrics with reg (a registry of its own when nil).
func New(pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Store{pool: pool, m: newMetrics(reg), log: log}
}

// Ping reports whether the database answers now, and records it in the database_up gauge.
func (s *Store) Ping(ctx context.Context) error {
	err := s.pool.Ping(ctx)
	s.m.up(err == nil)
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Write stores msgs so that each of them is either stored or dead-lettered exactly once
// however often it is written, and returns which were dead-lettered. The stats elements
// that normalize set apart (Rows.Rejected), and rows whose natural key already holds a row
// with different content (conflicts), are kept in kohaku_dead_letter on their own, once,
// in the transaction that stores the rest of their message.
//
// It writes the whole batch in one transaction. When the database rejects the data of
// some message, Write splits the batch in halves, recursively, until it has found the
// messages responsible; it dead-letters those with the database's error and stores the
// others, each part in a transaction of its own. When it returns an error, nothing of the
// batch may be assumed stored: [Transient] errors mean "try again later", and so do all
// others, which need an operator (a missing table, say) and are worth logging loudly. The
// caller retries the same batch; already stored parts are then found as duplicates.
func (s *Store) Write(ctx context.Context, msgs []Message) (Result, error) {
	start := time.Now()
	res, err := s.write(ctx, msgs)
	s.m.observeWrite(time.Since(start), err)
	if err != nil {
		s.m.up(!Transient(err))
		return Result{}, err
	}
	s.m.up(true)
	s.m.count(msgs, res)
	s.logDeadLetters(msgs, res.added)
	return res, nil
}

// logDeadLetters logs the new dead letters added, once: those already present were logged
// when added. A message's elements make one line, however many they are.
func (s *Store) logDeadLetters(msgs []Message, added []deadLetter) {
	for k := 0; k < len(added); {
		a := added[k]
		m := msgs[a.msg]
		if a.element < 0 {
			s.log.Warn("message can never be stored, kept in kohaku_dead_letter",
				"stream_seq", m.Seq, "subject", m.Subject, "bytes", len(m.Body), "err", a.err)
			k++
			continue
		}
		n := 1
		for k+n < len(added) && added[k+n].msg == a.msg && added[k+n].element >= 0 &&
			(added[k+n].reason == ReasonConflict) == (a.reason == ReasonConflict) {
			n++
		}
		what := "stats elements can never be stored, kept in kohaku_dead_letter; the rest of the message is stored"
		if a.reason == ReasonConflict {
			what = "rows differ from stored rows of the same natural key, kept in kohaku_dead_letter as conflicts"
		}
		s.log.Warn(what, "stream_seq", m.Seq, "subject", m.Subject, "elements", n, "reason", a.reason, "err", a.err)
		k += n
	}
}

func (s *Store) write(ctx context.Context, msgs []Message) (Result, error) {
	res, err := s.writeOnce(ctx, msgs)
	if err == nil || Transient(err) || !dataError(err) {
		return res, err
	}
	if n := len(msgs); n > 1 {
		s.log.Debug("database rejected data, bisecting the batch", "messages", n, "err", err)
		left, err := s.write(ctx, msgs[:n/2])
		if err != nil {
			return Result{}, err
		}
		right, err := s.write(ctx, msgs[n/2:])
		if err != nil {
			return Result{}, err
		}
		left.add(right, n/2)
		return left, nil
	}
	// The one message left is the culprit: keep it as a dead letter with the reason.
	// Normalization decides what PostgreSQL cannot store, so this is a last resort.
	m := msgs[0]
	m.Err = fmt.Errorf("rejected by the database: %w", err)
	res, derr := s.writeOnce(ctx, []Message{m})
	if derr != nil {
		return Result{}, errors.Join(derr, fmt.Errorf("dead-letter stream_seq %d after: %w", m.Seq, err))
	}
	return res, nil
}

// writeOnce stores msgs in one transaction, by COPY first and by merging when that finds a
// row already present. Reports that the batch holds twice are settled first (see
// settleRepeats), so that such a batch is copied like any other; only what Go cannot
// decide goes to the merge at once.
func (s *Store) writeOnce(ctx context.Context, msgs []Message) (Result, error) {
	rep := settleRepeats(msgs)
	b := newTableBatch(rep.msgs)
	b.dead = append(b.dead, rep.conflicts...)
	merge := rep.undecided
	res, err := s.inTx(ctx, b, merge)
	if !merge && err != nil && uniqueViolation(err) {
		merge = true
		res, err = s.inTx(ctx, b, true)
	}
	if merge {
		s.m.merges.Inc()
		res.Merged = true
	}
	res.Duplicates += rep.duplicates
	return res, err
}

// inTx writes b in one transaction, copying straight into the tables or, when merge is
// set, through temporary tables that drop the rows already present and find the conflicts.
func (s *Store) inTx(ctx context.Context, b *tableBatch, merge bool) (Result, error) {
	res := Result{Inserted: map[string]int{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if merge {
			// Merging is an index lookup per row, which a large batch makes look costly
			// enough for PostgreSQL to compile it first (JIT): that takes longer than the
			// lookups.
			if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
		dls := slices.Clone(b.dead)
		// Tables in name order, connections in id order: two writers sharing the
		// consumer then take locks in the same order.
		for _, table := range b.tables {
			rows := b.rows[table]
			start := time.Now()
			var n int64
			var conflicts []int
			var err error
			if merge {
				n, conflicts, err = mergeRows(ctx, tx, table, rows)
			} else {
				n, err = copyRows(ctx, tx, table, rows)
			}
			if err != nil {
				return err
			}
			s.m.copySeconds.WithLabelValues(table).Observe(time.Since(start).Seconds())
			res.Inserted[table] += int(n)
			res.Duplicates += rows.len() - int(n)
			msgs, origins := rows.originsOf(conflicts)
			for k := range conflicts {
				dls = append(dls, conflictDeadLetter(b.msgs, msgs[k], table, origins[k]))
			}
		}
		fresh, err := writeDeadLetters(ctx, tx, dls, b.msgs)
		if err != nil {
			return err
		}
		res.added = fresh
		for _, d := range fresh {
			if d.element >= 0 {
				res.DeadElements++
			}
			if d.reason == ReasonConflict {
				res.Conflicts++
				res.Duplicates-- // counted above among the rows not inserted
			}
		}
		res.Dead = b.deadMsgs
		// Last: the rows of busy connections stay locked only until the commit.
		n, err := upsertConnections(ctx, tx, b.connections)
		if err != nil {
			return err
		}
		res.Inserted[normalize.TableConnection] += n
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// tableBatch is msgs grouped for one transaction: their rows by table, their connections,
// and their dead letters: the messages without rows and the elements set apart.
type tableBatch struct {
	msgs        []Message
	tables      []string // sorted
	rows        map[string]*tableRows
	connections []connection // one per connection id, sorted by id
	deadMsgs    []int        // indexes of msgs without rows
	dead        []deadLetter // of the messages without rows, then of elements, in msgs order
}

func newTableBatch(msgs []Message) *tableBatch {
	b := &tableBatch{msgs: msgs, rows: map[string]*tableRows{}}
	conns := map[string]*connection{}
	for i, m := range msgs {
		if m.Err != nil || m.Rows == nil {
			b.deadMsgs = append(b.deadMsgs, i)
			b.dead = append(b.dead, messageDeadLetter(msgs, i))
			continue
		}
		b.dead = append(b.dead, rejectedDeadLetters(msgs, i)...)
		for table, rows := range m.Rows.Tables {
			if len(rows) == 0 {
				continue
			}
			tr := b.rows[table]
			if tr == nil {
				tr = &tableRows{}
				b.rows[table] = tr
				b.tables = append(b.tables, table)
			}
			tr.add(i, rows, m.Rows.Origins[table])
		}
		if c := m.Rows.Connection; c != nil {
			if have := conns[c.ConnectionID]; have != nil {
				have.see(c)
			} else {
				conns[c.ConnectionID] = newConnection(c)
			}
		}
	}
	slices.Sort(b.tables)
	for _, c := range conns {
		b.connections = append(b.connections, *c)
	}
	slices.SortFunc(b.connections, func(x, y connection) int { return strings.Compare(x.ConnectionID, y.ConnectionID) })
	return b
}
