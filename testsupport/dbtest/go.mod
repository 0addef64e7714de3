module kohaku/testsupport/dbtest

go 1.26.8

require (
	github.com/jackc/pgx/v5 v5.12.0
	kohaku/testsupport v0.0.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	golang.org/x/text v0.41.0 // indirect
)

replace kohaku/testsupport => ../
