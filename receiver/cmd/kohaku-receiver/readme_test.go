package main

import (
	"flag"
	"testing"

	"kohaku/pkg/config"
	"kohaku/testsupport/testenv"
)

var updateREADME = flag.Bool("update", false, "rewrite the README's table of kohaku-receiver's variables from Config")

// TestREADMEDocumentsEveryVariable keeps README.md's configuration table equal to Config:
// every variable with its default and meaning. After changing Config, regenerate it with
//
//	go test ./receiver/cmd/kohaku-receiver -run TestREADMEDocumentsEveryVariable -update
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	table, err := config.Markdown(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.DocSection(t, "../../../README.md", "config:kohaku-receiver", table, *updateREADME)
}
