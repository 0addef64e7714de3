package normalize

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// numbersFile holds numericCases, for the test in schema/ that asks PostgreSQL whether
// jsonb takes each number (that test needs PostgreSQL, which this module's tests do not
// reach).
const numbersFile = "testdata/edgecases/numbers.json"

// numericCase is a JSON number and whether PostgreSQL's numeric, and so jsonb, holds it.
type numericCase struct {
	Number string `json:"number"`
	Fits   bool   `json:"fits"`
}

// numericCases are numbers at the edges of what numeric holds, with PostgreSQL's verdict.
func numericCases() []numericCase {
	return []numericCase{
		{"0", true}, {"-0", true}, {"0.0", true}, {"1.5e300", true}, {"-1.7976931348623157e308", true}, {"5e-324", true},
		// Digits before the point: at most 131072.
		{"1e131071", true}, {"9.99e131071", true}, {"-9e131071", true}, {"1e131072", false}, {"10e131071", false},
		{"0.1e131072", true}, {"0.01e131073", true}, {"0.01e131074", false}, {"0.1e131073", false},
		// Digits after the point, as written: at most 16383, zero too.
		{"1e-16383", true}, {"0.1e-16382", true}, {"1e-16384", false}, {"10e-16384", false}, {"1.5e-16383", false},
		{"0e-16383", true}, {"0e-16384", false}, {"0.0e-16383", false}, {"0.00e-16382", false},
		// An exponent of 1073741823 (INT_MAX / 2) or more in size is refused whatever the digits.
		{"0e1073741822", true}, {"0e1073741823", false}, {"0E+1073741823", false}, {"0e200000", true},
		{"0e-1073741822", false}, {"0e-1073741823", false}, {"1e-1073741822", false}, {"0e99999999999", false},
		{"0e99999999999999999999", false}, {"0.000e5", true}, {"1e0000000000000000000001", true},
	}
}

func TestFitsNumericFollowsPostgreSQL(t *testing.T) {
	for _, c := range numericCases() {
		if got := fitsNumeric([]byte(c.Number)); got != c.Fits {
			t.Errorf("fitsNumeric(%s) = %t, PostgreSQL says %t", c.Number, got, c.Fits)
		}
	}
}

// TestNumbersFileIsUpToDate keeps numbersFile equal to numericCases; -update rewrites it.
func TestNumbersFileIsUpToDate(t *testing.T) {
	want, err := json.MarshalIndent(numericCases(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(numbersFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(numbersFile)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is not what numericCases gives (%v); run go test ./pkg/normalize -run TestNumbersFileIsUpToDate -update", numbersFile, err)
	}
}

// refParseFloat is parseFloat's definition, without its shortcuts: the float64 of raw, if
// its shortest form has raw's value.
func refParseFloat(raw []byte) (float64, bool) {
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	return v, canonicalNumber(raw) == canonicalNumber(strconv.AppendFloat(nil, v, 'e', -1, 64))
}

// refParseInt is parseInt's definition: an integer literal within int64.
func refParseInt(raw []byte) (int64, bool) {
	if bytes.ContainsAny(raw, ".eE") {
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	return v, err == nil
}

// jsonNumber matches a JSON number (RFC 8259), what parseFloat and parseInt are given.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// numberSeeds are JSON numbers on both sides of the shortcuts' edges.
var numberSeeds = []string{
	"0", "-0", "0.0", "-0.000", "1", "-1", "12", "0.1", "0.3", "1.5", "123456789012345",
	"1795932851076.133", "1795932851076.1331", "-1795932851076.133", "1795932851076.1330", "700000000000.1121",
	"9007199254740991", "9007199254740992", "9007199254740993", "4503599627370497.5",
	"0.30000000000000004", "0.1000000000000000055511151231257827", "0.10000000000000001",
	"1234567890123456.7", "0.0000000000000000000001", "0.00000000000000000000001",
	"999999999999999999", "-999999999999999999", "9223372036854775807", "-9223372036854775808",
	"9223372036854775808", "1e3", "1E-7", "5e-324", "1e400", "17976931348623157e292",
	"2.2250738585072014e-308", "1000000000000000000000", "100000000000000000000000",
}

func TestNumbersParseAsTheirDefinitions(t *testing.T) {
	for _, n := range numberSeeds {
		checkNumber(t, n)
	}
}

// checkNumber holds parseFloat and parseInt to their definitions for the JSON number n.
func checkNumber(t *testing.T, n string) {
	t.Helper()
	wantF, wantFOK := refParseFloat([]byte(n))
	if gotF, ok := parseFloat([]byte(n)); ok != wantFOK || (ok && math.Float64bits(gotF) != math.Float64bits(wantF)) {
		t.Errorf("parseFloat(%s) = %v, %t; want %v, %t", n, gotF, ok, wantF, wantFOK)
	}
	wantI, wantIOK := refParseInt([]byte(n))
	if gotI, ok := parseInt([]byte(n)); ok != wantIOK || gotI != wantI {
		t.Errorf("parseInt(%s) = %d, %t; want %d, %t", n, gotI, ok, wantI, wantIOK)
	}
}

// FuzzNumbers holds parseFloat and parseInt, with their shortcuts, to their definitions for
// every JSON number.
func FuzzNumbers(f *testing.F) {
	for _, n := range numberSeeds {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if !jsonNumber.MatchString(n) {
			return
		}
		checkNumber(t, n)
	})
}
