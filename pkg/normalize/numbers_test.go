package normalize

import (
	"bytes"
	"encoding/json"
	"os"
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
