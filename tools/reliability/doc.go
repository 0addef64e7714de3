// Package reliability holds the black-box reliability suite of Kohaku: its tests build
// kohaku-receiver and kohaku-writer, run them as processes against real PostgreSQL and real
// JetStream (embedded NATS servers, one or a cluster of three, that the tests stop and
// restart), load them with simulated Sora connections and break things under that load:
// the database, the writer, NATS, the stream leader, the tables, the sender, the clients.
//
// Each test records every request and its answer, then checks the promises of DESIGN.md
// section 1 against the database: every stats element of a request answered 204 is stored
// exactly once, no element of a request answered 4xx is stored, and nothing else is there
// (an element of a request answered 503 or not answered at all may be stored, once). Each
// test prints one summary line:
//
//	summary: requests=… 204=… rows_expected=… rows_found=… duplicates=… lost=… (…)
//
// where rows_found counts every row in the database, and the parenthesis tells the
// requests answered 4xx or abandoned, those answered 503 or not at all, how many rows of
// the latter were stored anyway, the unexpected rows and the dead letters.
//
// The package has no API: run it with go test. PostgreSQL comes from
// KOHAKU_TEST_DATABASE_URL (default the local server); without it the tests skip, or
// fail when CI is set.
package reliability
