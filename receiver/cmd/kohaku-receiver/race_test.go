//go:build race

package main

// raceEnabled builds the binary under test with the race detector when the tests run with
// it, so that the build reuses the packages already compiled for the test.
const raceEnabled = true
