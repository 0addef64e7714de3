package normalize

import (
	"strconv"
	"strings"
	"testing"

	"kohaku/pkg/sora"
)

// BenchmarkMessage normalizes the largest fixture, as the writer does for every message:
// with Message, and with one Normalizer for all, as each decode worker of the writer does.
func BenchmarkMessage(b *testing.B) {
	typ, body := largestBody(b)
	var n Normalizer
	for _, bc := range []struct {
		name    string
		message func(string, []byte) (*Rows, error)
	}{
		{"fresh", Message},
		{"reused", n.Message},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := bc.message(typ, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkManyMembers normalizes a body with n unknown members in one stats element, and
// one with n unknown top-level members: the time per member (ns/member) must stay about
// the same as n grows, or a body of a few MB could hold the writer for minutes.
func BenchmarkManyMembers(b *testing.B) {
	for _, where := range []string{"element", "envelope"} {
		for _, n := range []int{10_000, 40_000, 90_000} {
			b.Run(where+"/"+strconv.Itoa(n), func(b *testing.B) {
				body := manyMembersBody(where, n)
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					rows, err := Message(sora.TypeUserAgent, body)
					if err != nil || rows.Count != 1 {
						b.Fatalf("Message: %v, %v", rows, err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
			})
		}
	}
}

// manyMembersBody returns a connection.user-agent body with n distinct unknown members
// in its one stats element (where "element") or at its top level (where "envelope").
func manyMembersBody(where string, n int) []byte {
	var members strings.Builder
	for k := range n {
		members.WriteString(`,"m` + strconv.Itoa(k) + `":` + strconv.Itoa(k))
	}
	if where == "element" {
		return userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0B01", `[{"id":"T","type":"transport","timestamp":1`+members.String()+`}]`)
	}
	body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0B01", `[{"id":"T","type":"transport","timestamp":1}]`)
	return append([]byte(`{"x":0`+members.String()+`,`), body[1:]...)
}
