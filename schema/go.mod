module kohaku/schema

go 1.26.8

require github.com/jackc/pgx/v5 v5.12.0

require (
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	kohaku/testsupport v0.0.0
	kohaku/testsupport/dbtest v0.0.0
)

// The tests load pkg's browser fixtures through pkg/normalize, and go generate
// (internal/addcolumns) reads normalize's column catalog; pkg never imports schema.
require kohaku/pkg v0.0.0

replace kohaku/pkg => ../pkg

replace kohaku/testsupport => ../testsupport

replace kohaku/testsupport/dbtest => ../testsupport/dbtest
