package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"kohaku/schema/internal/sqltext"
)

// analysisFiles holds the analysis: SQL files that derive tables from the stored stats rows
// (issue intervals, quality scores), run by [Analyze] in name order.
//
//go:embed analysis/*.sql
var analysisFiles embed.FS

// analyzeLockKey is the pg_advisory_xact_lock key that serializes Analyze runs on one
// database: the ASCII bytes of "kanaly".
const analyzeLockKey int64 = 0x6b616e616c79

// AnalyzeResult tells what one [Analyze] run did.
type AnalyzeResult struct {
	Since, Until time.Time // the period analyzed
	Files        []AnalyzedFile
	Elapsed      time.Duration
}

// AnalyzedFile is what one analysis file did.
type AnalyzedFile struct {
	Name       string // e.g. "10_issues.sql"
	Statements int
	// Rows is the sum of the rows that its statements reported: inserted, deleted,
	// updated or selected, the temporary tables of the run included.
	Rows    int64
	Elapsed time.Duration
}

// Beginner is what Analyze needs of a *pgx.Conn or a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Analyze recomputes, from the stats rows stored with a time in [since, until], the tables
// that the analysis derives from them, replacing what was there for that period.
//
// The contract of the analysis files: every file schema/analysis/*.sql runs, in name order
// (10_issues.sql, 20_scores.sql, ...), in ONE transaction, which Analyze commits only when
// all of them succeeded. A file is a list of statements separated by semicolons (comments,
// quoted strings and dollar-quoted bodies may hold semicolons); each statement runs with
// $1 = since and $2 = until, both timestamptz, and $3 = the connection ids to analyze, a
// text[] that is NULL for all of them (a statement may use any of them, or none). Each
// file deletes and inserts its own rows for the period and connections, and only those; it
// may create temporary tables, which must be ON COMMIT DROP and named after the file's
// tables (kohaku_issue_*, ...), so that files never see each other's. A later file may
// read what an earlier one wrote in the same run. Because the period's intervals may reach
// beyond it, a file decides itself how far around [since, until] it reads and which of its
// stored rows it replaces (10_issues.sql explains its rule): analyzing a period in one run
// or in several consecutive ones gives the same rows. Everything a file derives belongs to
// one connection and is computed from that connection's rows alone, so analyzing the
// period for sets of connections one run each (see [AnalyzeConnections]) gives the rows of
// one run for all of them too.
//
// The transaction runs without JIT compilation, with 64 MB of work_mem and a statistics
// target of 10 for the ANALYZE of temporary tables. Runs on one database are serialized by
// a transaction-level advisory lock, so a periodic analysis of several writers and an
// analyze command may overlap in time safely. The transaction is READ COMMITTED: rows
// written by the writer while it runs are picked up by the next run over their period.
func Analyze(ctx context.Context, db Beginner, since, until time.Time) (AnalyzeResult, error) {
	return analyzeFor(ctx, db, since, until, nil)
}

// AnalyzeConnections is [Analyze] for the connections connectionIDs only: the rows that
// the analysis derives for other connections stay as they are. Analyzing a period
// connection set by connection set, sets that together hold every connection with a
// report in the period, gives the rows of Analyze over it, in shorter transactions. An
// empty connectionIDs analyzes nothing, not everything.
func AnalyzeConnections(ctx context.Context, db Beginner, since, until time.Time, connectionIDs []string) (AnalyzeResult, error) {
	if connectionIDs == nil {
		connectionIDs = []string{}
	}
	return analyzeFor(ctx, db, since, until, connectionIDs)
}

// analyzeFor is Analyze for connectionIDs, or for every connection when it is nil.
func analyzeFor(ctx context.Context, db Beginner, since, until time.Time, connectionIDs []string) (AnalyzeResult, error) {
	res := AnalyzeResult{Since: since, Until: until}
	if until.Before(since) {
		return res, fmt.Errorf("schema: analyze: until %s is before since %s", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	files, err := analysisScripts()
	if err != nil {
		return res, err
	}
	start := time.Now()
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", analyzeLockKey); err != nil {
			return fmt.Errorf("take the analysis lock: %w", err)
		}
		// The planner compiles a statement whose estimated cost passes jit_above_cost, and
		// the analysis' joins pass it with a few thousand rows: the compilation (about 0.7 s
		// a statement, measured) costs many times what it saves over a live run's rows. The
		// sorts of the lag() windows spill to disk with the default 4 MB of work_mem from a
		// few thousand reports; 64 MB holds a live run's. The files ANALYZE their temporary
		// tables for the planner's row counts, which a sample of 3,000 rows gives as well as
		// the default 30,000: a tenth of the time (0.54 -> 0.05 s for 30 s of 1,000
		// connections' reports).
		if _, err := tx.Exec(ctx, "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL default_statistics_target = 10"); err != nil {
			return fmt.Errorf("analysis settings: %w", err)
		}
		for _, f := range files {
			af, err := runScript(ctx, tx, f, since, until, connectionIDs)
			res.Files = append(res.Files, af)
			if err != nil {
				return err
			}
		}
		return nil
	})
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("schema: analyze %s to %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	return res, nil
}

// script is one analysis file, cut into statements.
type script struct {
	name       string
	statements []string
}

// analysisScripts returns the embedded analysis files in name order.
func analysisScripts() ([]script, error) {
	names, err := fs.Glob(analysisFiles, "analysis/*.sql")
	if err != nil {
		return nil, fmt.Errorf("schema: list analysis files: %w", err)
	}
	sort.Strings(names)
	out := make([]script, 0, len(names))
	for _, n := range names {
		b, err := analysisFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", n, err)
		}
		out = append(out, script{name: path.Base(n), statements: sqltext.Split(string(b))})
	}
	return out, nil
}

// runScript runs the statements of f in tx with $1 = since, $2 = until and $3 =
// connectionIDs (NULL when nil).
func runScript(ctx context.Context, tx pgx.Tx, f script, since, until time.Time, connectionIDs []string) (AnalyzedFile, error) {
	af := AnalyzedFile{Name: f.name}
	start := time.Now()
	defer func() { af.Elapsed = time.Since(start) }()
	// The parameters are declared for every statement, whether it uses them or not, so
	// that a statement using only $2 is still well typed.
	oids := []uint32{pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.TextArrayOID}
	params := [][]byte{
		[]byte(since.UTC().Format(time.RFC3339Nano)),
		[]byte(until.UTC().Format(time.RFC3339Nano)),
		nil, // NULL: every connection
	}
	if connectionIDs != nil {
		ids, err := tx.Conn().TypeMap().Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, connectionIDs, nil)
		if err != nil {
			return af, fmt.Errorf("%s: encode the connection ids: %w", f.name, err)
		}
		params[2] = ids
	}
	pc := tx.Conn().PgConn()
	for i, stmt := range f.statements {
		tag, err := pc.ExecParams(ctx, stmt, params, oids, nil, nil).Close()
		if err != nil {
			af.Elapsed = time.Since(start)
			return af, fmt.Errorf("%s, statement %d (%s): %w", f.name, i+1, firstLine(stmt), err)
		}
		af.Statements++
		af.Rows += tag.RowsAffected()
	}
	af.Elapsed = time.Since(start)
	return af, nil
}

// firstLine returns the first line of stmt, to name it in an error.
func firstLine(stmt string) string {
	line, _, _ := strings.Cut(stmt, "\n")
	return line
}
