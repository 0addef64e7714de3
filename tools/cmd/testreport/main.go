// Command testreport prints what `go test -json` reports as briefly as `go test` without
// -v does, and ends with the tests that were skipped, with their reasons, and a count:
//
//	go test -json ./... 2>&1 | testreport [-show REGEXP]
//
// For each package it prints the summary line ("ok", "FAIL", "?") once the package is
// done; for a failed package, first the output of its failed tests and of the package
// itself. -show also prints the output lines of passing tests that match REGEXP (the
// reliability suite's one-line summaries). Lines that are not JSON events, such as the go
// command's own errors, are printed as they come. The last lines list every skipped test
// with its package and message, then "tests: N passed, N failed, N skipped". The exit
// status is 1 when a test or a package failed, 2 when the input cannot be read, else 0;
// callers should still check go test's own status.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
)

func main() {
	show := flag.String("show", "", "also print output lines of passing tests that match this regular expression")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: go test -json ... 2>&1 | testreport [-show REGEXP]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	var re *regexp.Regexp
	if *show != "" {
		var err error
		if re, err = regexp.Compile(*show); err != nil {
			fmt.Fprintln(os.Stderr, "testreport: -show:", err)
			os.Exit(2)
		}
	}
	r := newReport(os.Stdout, re)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r.finish()
	if r.failed() {
		os.Exit(1)
	}
}
