package store

import (
	"cmp"
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
	// Merged tells whether rows of the batch went through the merge path: rows of a
	// report stored recently, or all of them after a unique violation.
	Merged bool
	// Redone tells whether the COPY found a row already present that nothing foresaw (a
	// redelivery of a report this Store no longer remembers), so that the transaction was
	// done again with every row merged: the costly way.
	Redone bool

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
	r.Redone = r.Redone || o.Redone
}

// Store writes batches of messages through a connection pool.
type Store struct {
	pool    *pgxpool.Pool
	m       *metrics
	log     *slog.Logger
	recent  *recentReports
	written written    // report times stored since TakeWritten
	sql     statements // read only
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
	return &Store{pool: pool, m: newMetrics(reg), log: log, recent: newRecentReports(recentSize), sql: newStatements()}
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
	return s.WriteBatch(ctx, s.Prepare(msgs))
}

// A Batch is messages made ready to write: their repeats settled (settleRepeats) and their
// rows grouped by table to be copied. Its contents are only read by writes, so that a batch
// can be written again after a failed write.
type Batch struct {
	msgs   []Message
	rep    repeats
	copied *tableBatch // rep.msgs to copy; nil when only the database can settle their repeats
}

// Len returns the number of messages in b.
func (b *Batch) Len() int { return len(b.msgs) }

// Prepare makes msgs ready to write, the work of a write that needs no database: a caller
// that prepares the next batch while the database writes the last one keeps its
// connection busy (the writer's pipeline: in kohaku-bench's drain on one connection, 0.26 s
// of 14 s that the connection waited for). It only reads s and is safe to call at any time.
func (s *Store) Prepare(msgs []Message) *Batch {
	b := &Batch{msgs: msgs, rep: settleRepeats(msgs, s.sql)}
	if !b.rep.undecided {
		b.copied = newTableBatch(b.rep.msgs, func(int) bool { return false })
		b.copied.dead = append(b.copied.dead, b.rep.conflicts...)
	}
	return b
}

// WriteBatch is Write for a prepared batch.
func (s *Store) WriteBatch(ctx context.Context, b *Batch) (Result, error) {
	msgs := b.msgs
	start := time.Now()
	res, err := s.write(ctx, b)
	s.m.observeWrite(time.Since(start), err)
	if err != nil {
		s.m.up(!Transient(err))
		return Result{}, err
	}
	s.m.up(true)
	s.written.add(msgs)
	s.m.count(msgs, res)
	s.logDeadLetters(msgs, res.added)
	return res, nil
}

// logDeadLetters logs the new dead letters added, once: those already present were logged
// when added. A message's elements that cannot be stored make one line, however many they
// are and in whatever order they came, and its conflicts one more: the conflicts of a merge
// come table by table, and a report in conflict in every element logs one line, not one
// per table.
func (s *Store) logDeadLetters(msgs []Message, added []deadLetter) {
	added = slices.Clone(added)
	slices.SortStableFunc(added, func(a, b deadLetter) int {
		return cmp.Or(cmp.Compare(a.msg, b.msg), cmp.Compare(a.class(), b.class()))
	})
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
		for k+n < len(added) && added[k+n].msg == a.msg && added[k+n].class() == a.class() {
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

func (s *Store) write(ctx context.Context, b *Batch) (Result, error) {
	res, err := s.writeOnce(ctx, b)
	if err == nil || Transient(err) || !dataError(err) {
		return res, err
	}
	msgs := b.msgs
	if n := len(msgs); n > 1 {
		s.log.Debug("database rejected data, bisecting the batch", "messages", n, "err", err)
		left, err := s.write(ctx, s.Prepare(msgs[:n/2]))
		if err != nil {
			return Result{}, err
		}
		right, err := s.write(ctx, s.Prepare(msgs[n/2:]))
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
	res, derr := s.writeOnce(ctx, s.Prepare([]Message{m}))
	if derr != nil {
		return Result{}, errors.Join(derr, fmt.Errorf("dead-letter stream_seq %d after: %w", m.Seq, err))
	}
	return res, nil
}

// writeOnce stores p's messages in one transaction, by COPY first and by merging when that
// finds a row already present. Reports that the batch holds twice are settled first (see
// settleRepeats, in Prepare), and reports stored recently (a redelivery, a report sent
// again under a microsecond) are merged on their own, so that such a batch copies the rest
// like any other; only what neither can decide sends the whole batch to the merge.
func (s *Store) writeOnce(ctx context.Context, p *Batch) (Result, error) {
	rep := p.rep
	seen := s.recent.seen(rep.msgs)
	all := rep.undecided
	b := p.copied // prepared for the common case: nothing to merge
	if all || seen != nil {
		b = newTableBatch(rep.msgs, func(i int) bool { return all || seen != nil && seen[i] })
		b.dead = append(b.dead, rep.conflicts...)
	}
	res, err := s.inTx(ctx, b)
	if !all && err != nil && uniqueViolation(err) {
		b = newTableBatch(rep.msgs, func(int) bool { return true })
		b.dead = append(b.dead, rep.conflicts...)
		res, err = s.inTx(ctx, b)
		res.Redone = true
	}
	if err != nil {
		return Result{}, err
	}
	s.recent.add(rep.msgs)
	if len(b.merge) > 0 {
		s.m.merges.Inc()
		res.Merged = true
	}
	res.Duplicates += rep.duplicates
	return res, nil
}

// inTx writes b in one transaction, copying its rows straight into the tables, and its
// rows to merge through temporary tables that drop the rows already present and find the
// conflicts.
func (s *Store) inTx(ctx context.Context, b *tableBatch) (Result, error) {
	res := Result{Inserted: map[string]int{}}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		m := merge{rows: b.merge, sql: s.sql}
		for _, table := range b.tables {
			if b.merge[table] != nil {
				m.tables = append(m.tables, table)
			}
		}
		if len(m.tables) > 0 {
			if err := m.create(ctx, tx); err != nil {
				return err
			}
		}
		// Tables in name order, connections in id order: two writers sharing the
		// consumer then take locks in the same order.
		for _, table := range b.tables {
			start := time.Now()
			if rows := b.rows[table]; rows != nil {
				n, err := copyRows(ctx, tx, s.sql.of(table), rows)
				if err != nil {
					return err
				}
				res.Inserted[table] += int(n)
			}
			if b.merge[table] != nil {
				if err := m.copy(ctx, tx, table); err != nil {
					return err
				}
			}
			s.m.copySeconds.WithLabelValues(table).Observe(time.Since(start).Seconds())
		}
		dls := slices.Clone(b.dead)
		if len(m.tables) > 0 {
			inserted, conflicts, err := m.insert(ctx, tx)
			if err != nil {
				return err
			}
			for _, table := range m.tables {
				rows := b.merge[table]
				res.Inserted[table] += int(inserted[table])
				res.Duplicates += rows.len() - int(inserted[table])
				msgs, origins := rows.originsOf(conflicts[table])
				for k := range msgs {
					dls = append(dls, conflictDeadLetter(b.msgs, msgs[k], table, s.sql.of(table), origins[k]))
				}
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
		start := time.Now()
		n, err := upsertConnections(ctx, tx, b.connections)
		if err != nil {
			return err
		}
		if len(b.connections) > 0 {
			s.m.copySeconds.WithLabelValues(normalize.TableConnection).Observe(time.Since(start).Seconds())
		}
		res.Inserted[normalize.TableConnection] += n
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// tableBatch is msgs grouped for one transaction: their rows by table, to copy or to
// merge, their connections, and their dead letters: the messages without rows and the
// elements set apart.
type tableBatch struct {
	msgs        []Message
	tables      []string              // sorted, the tables of rows and merge
	rows        map[string]*tableRows // to copy
	merge       map[string]*tableRows // to merge: their keys may be present already
	connections []connection          // one per connection id, sorted by id
	deadMsgs    []int                 // indexes of msgs without rows
	dead        []deadLetter          // of the messages without rows, then of elements, in msgs order
}

// newTableBatch groups msgs; the rows of the messages for which merge returns true are to
// be merged, the others' to be copied. Rows go in the order of byConnection.
func newTableBatch(msgs []Message, merge func(i int) bool) *tableBatch {
	b := &tableBatch{msgs: msgs, rows: map[string]*tableRows{}, merge: map[string]*tableRows{}}
	conns := map[string]*connection{}
	for i, m := range msgs {
		if m.Err != nil || m.Rows == nil {
			b.deadMsgs = append(b.deadMsgs, i)
			b.dead = append(b.dead, messageDeadLetter(msgs, i))
			continue
		}
		b.dead = append(b.dead, rejectedDeadLetters(msgs, i)...)
		if c := m.Rows.Connection; c != nil {
			if have := conns[c.ConnectionID]; have != nil {
				have.see(c)
			} else {
				conns[c.ConnectionID] = newConnection(c)
			}
		}
	}
	for _, i := range byConnection(msgs) {
		m := msgs[i]
		for table, rows := range m.Rows.Tables {
			if len(rows) == 0 {
				continue
			}
			into := b.rows
			if merge(i) {
				into = b.merge
			}
			tr := into[table]
			if tr == nil {
				tr = &tableRows{}
				into[table] = tr
				if b.rows[table] == nil || b.merge[table] == nil {
					b.tables = append(b.tables, table) // the first of the two
				}
			}
			tr.add(i, rows, m.Rows.Origins[table])
		}
	}
	slices.Sort(b.tables)
	for _, c := range conns {
		b.connections = append(b.connections, *c)
	}
	slices.SortFunc(b.connections, func(x, y connection) int { return strings.Compare(x.ConnectionID, y.ConnectionID) })
	return b
}

// byConnection returns the indexes of the msgs that have rows, ordered by their connection
// id, the reports of one connection (and those without one) in batch order. Copied in that
// order, a batch's rows walk the (connection_id, ...) indexes of the stats tables from left
// to right, each leaf page touched once while it is in cache, instead of jumping between
// the pages of hundreds of connections: in kohaku-bench (5,000 connections, batches of
// 500) CopyFrom of the same batches took a median 10 % (2 connections) and 6 % (1) less
// time in this order, over 20 pairs of rounds. Where a batch holds a natural key twice,
// the first in batch order stays first, as the merge needs.
func byConnection(msgs []Message) []int {
	order := make([]int, 0, len(msgs))
	for i, m := range msgs {
		if m.Err == nil && m.Rows != nil {
			order = append(order, i)
		}
	}
	id := func(i int) string {
		if c := msgs[i].Rows.Connection; c != nil {
			return c.ConnectionID
		}
		return ""
	}
	slices.SortStableFunc(order, func(x, y int) int { return strings.Compare(id(x), id(y)) })
	return order
}
