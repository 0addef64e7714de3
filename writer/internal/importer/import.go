package importer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"kohaku/pkg/normalize"
	"kohaku/pkg/sora"
	"kohaku/pkg/stream"
	"kohaku/writer/internal/progress"
	"kohaku/writer/internal/store"
)

// Writer stores batches of messages: a *store.Store.
type Writer interface {
	Write(ctx context.Context, msgs []store.Message) (store.Result, error)
}

// Options configure Import. Zero fields take the defaults named.
type Options struct {
	// ReaderOptions bound lines and reports (4 MiB each).
	ReaderOptions
	// BatchSize is the most reports written in one transaction (500).
	BatchSize int
	// MaxBatchBytes bounds the bodies of one batch (64 MiB), so that a batch of large
	// reports does not hold BatchSize of them.
	MaxBatchBytes int
	// RetryMin and RetryMax bound the backoff between attempts to write a batch while
	// the database is unavailable (100ms, 5s); WriteTimeout bounds one attempt (1m).
	RetryMin, RetryMax, WriteTimeout time.Duration
	// Stdin is read for the input named "-" (os.Stdin when nil).
	Stdin io.Reader
	// Rejected, when set, receives a line for each bad line and each report not imported,
	// naming its input and line.
	Rejected io.Writer
	// Progress, when set, receives a progress line at the start and every ProgressEvery
	// (1s); the summary line is the caller's (Stats.Summary).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger receives what Import does (discarded when nil).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.ReaderOptions = o.ReaderOptions.withDefaults()
	if o.BatchSize == 0 {
		o.BatchSize = 500
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = 64 << 20
	}
	if o.RetryMin == 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = time.Minute
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Rejected == nil {
		o.Rejected = io.Discard
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stats tells what an import did.
type Stats struct {
	Lines   int // lines read
	Reports int // reports read, rejected ones included
	Rows    int // stats rows written, new or already present
	NewRows int // stats rows that were not present yet
	// Rejected counts the reports not imported (bad lines that belong to no report count
	// as one), and the inputs that could not be opened.
	Rejected int
	Elapsed  time.Duration
	// Unfinished tells that Import returned an error before the end of its inputs.
	Unfinished bool
	// RowsFrom and RowsTo bound the row times written, zero when no row was: the window
	// whose aggregates must be refreshed.
	RowsFrom, RowsTo time.Time
}

// HeaderImportSource is the header that a report refused by the database keeps in
// kohaku_dead_letter: the input and line it was read from.
const HeaderImportSource = "Kohaku-Import-Source"

// Import reads the rtc_stats.jsonl inputs named, "-" for o.Stdin, rebuilds their reports
// (see Reader), and writes those that validate and normalize into st in batches, through
// the path and with the natural keys of the stream's messages: importing a log twice, or
// a report the webhook delivered too, adds nothing twice. What cannot be imported is
// described on o.Rejected and counted, and the rest is imported. Writes that fail
// transiently are retried until ctx ends; Import returns an error only when it could not
// finish, after a failed write or when ctx ended.
func Import(ctx context.Context, st Writer, names []string, o Options) (Stats, error) {
	o = o.withDefaults()
	if o.BatchSize < 1 {
		return Stats{}, fmt.Errorf("importer: batch size %d, want at least 1", o.BatchSize)
	}
	im := &importer{st: st, o: o, out: &lockedWriter{mu: new(sync.Mutex), w: o.Rejected}, p: &counter{start: time.Now()}}
	if o.Progress != nil {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			// One lock: both usually go to stderr.
			progress.Report(pctx, &lockedWriter{mu: im.out.mu, w: o.Progress}, o.ProgressEvery, im.p.status)
		}()
		defer func() {
			stop()
			<-done
		}()
	}

	for _, name := range names {
		// For the time left: compressed or not, the bytes of the files are what is read.
		fi, err := os.Stat(name)
		switch {
		case name == "-", err == nil && !fi.Mode().IsRegular():
			im.p.unsized.Store(true) // a pipe: its end is unknown
		case err == nil:
			im.p.total.Add(fi.Size())
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []item) // unbuffered: one batch is read while the last is written
	go func() {
		defer close(batches)
		im.read(rctx, names, batches)
	}()
	var werr error
	for b := range batches {
		if werr = im.write(ctx, b); werr != nil {
			cancel()
			for range batches { // the reader stops at its next batch
			}
		}
	}
	s := im.p.stats()
	s.RowsFrom, s.RowsTo = im.window.From, im.window.To
	switch {
	case werr != nil:
		s.Unfinished = true
		return s, werr
	case ctx.Err() != nil:
		s.Unfinished = true
		return s, fmt.Errorf("import interrupted: %w", ctx.Err())
	}
	o.Logger.Info("import done", "lines", s.Lines, "reports", s.Reports, "rows", s.Rows, "new_rows", s.NewRows,
		"rejected", s.Rejected, "elapsed", s.Elapsed.Round(time.Millisecond))
	return s, nil
}

// importer is the state of one Import.
type importer struct {
	st     Writer
	o      Options
	out    *lockedWriter // o.Rejected, shared with the progress lines
	p      *counter
	window store.TimeWindow // of the rows written; the writing goroutine's
}

// item is a report on its way to the database, with its message when it is good.
type item struct {
	rep *Report
	msg store.Message
}

// read reads the inputs in order and sends their reports in batches, until ctx ends.
func (im *importer) read(ctx context.Context, names []string, batches chan<- []item) {
	var (
		b    []item
		size int
	)
	send := func() bool {
		if len(b) == 0 {
			return true
		}
		im.prepare(b)
		select {
		case batches <- b:
		case <-ctx.Done():
			return false
		}
		b, size = nil, 0
		return true
	}
	lines := 0 // of the inputs done
	for _, name := range names {
		r, closeInput, err := im.open(name)
		if err != nil {
			im.out.printf("import: %v\n", err)
			im.p.rejected.Add(1)
			continue
		}
		for ctx.Err() == nil {
			rep, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			im.p.lines.Store(int64(lines + r.Lines()))
			im.p.reports.Add(1)
			b = append(b, item{rep: rep})
			size += len(rep.Body)
			if len(b) == im.o.BatchSize || size >= im.o.MaxBatchBytes {
				if !send() {
					break
				}
			}
		}
		lines += r.Lines()
		im.p.lines.Store(int64(lines))
		closeInput()
		if ctx.Err() != nil {
			return
		}
	}
	send()
}

// open opens the input name for reading; "-" is standard input.
func (im *importer) open(name string) (*Reader, func(), error) {
	var (
		in   io.Reader = im.o.Stdin
		stop           = func() {}
	)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err // it names the file
		}
		in, stop = f, func() { f.Close() }
	}
	r, err := NewReader(&countingReader{r: in, n: &im.p.read}, name, im.o.ReaderOptions)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return r, stop, nil
}

// prepare validates and normalizes the good reports of b, in parallel as the stream's
// batches are (normalizing is the import's CPU work), and describes those that cannot be
// imported, in order.
func (im *importer) prepare(b []item) {
	workers := min(max(1, runtime.GOMAXPROCS(0)-1), (len(b)+15)/16)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var norm normalize.Normalizer
			for i := w; i < len(b); i += workers {
				if b[i].rep.OK() {
					b[i].msg = message(&norm, b[i].rep)
				}
			}
		})
	}
	wg.Wait()
	for _, it := range b {
		rep := it.rep
		switch {
		case !rep.OK():
			for _, le := range rep.Bad {
				im.out.printf("import: %v\n", le)
			}
			if rep.ID != "" {
				im.out.printf("import: %s: not imported\n", describe(rep))
			}
		case it.msg.Err != nil:
			im.out.printf("import: %s: not imported: %v\n", describe(rep), it.msg.Err)
		default:
			continue
		}
		im.p.rejected.Add(1)
	}
}

// message is the store message of a good report: its webhook body as the stream would
// carry it, and its rows made by norm, or Err when it cannot become rows.
func message(norm *normalize.Normalizer, rep *Report) store.Message {
	m := store.Message{
		Seq:          deadLetterKey(rep.Body),
		Subject:      stream.Subject(sora.TypeConnectionRTC),
		ExporterType: sora.TypeConnectionRTC,
		Header: map[string][]string{
			stream.HeaderExporterType: {sora.TypeConnectionRTC},
			HeaderImportSource:        {fmt.Sprintf("%s:%d", rep.File, rep.Line)},
		},
		Body: rep.Body,
	}
	if err := sora.Validate(sora.TypeConnectionRTC, rep.Body); err != nil {
		m.Err = err
		return m
	}
	m.Rows, m.Err = norm.Message(sora.TypeConnectionRTC, rep.Body)
	return m
}

// deadLetterKey stands in for the stream sequence that an imported report lacks: it keys
// the report's row in kohaku_dead_letter should the database refuse it. It is a hash of
// the body with the top bit set, so that as stream_seq (a bigint) it is negative and
// meets no real sequence, and a report refused again is kept once.
func deadLetterKey(body []byte) uint64 {
	sum := sha256.Sum256(body)
	return binary.BigEndian.Uint64(sum[:8]) | 1<<63
}

// describe names a report for a message.
func describe(rep *Report) string {
	return fmt.Sprintf("%s:%d: report %s (lines %d-%d)", rep.File, rep.Line, rep.ID, rep.Line, rep.LastLine)
}
