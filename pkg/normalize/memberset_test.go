package normalize

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"kohaku/pkg/sora"
)

func TestMemberSetAgreesWithAMap(t *testing.T) {
	for _, n := range []int{0, 1, manyMembers - 1, manyMembers, manyMembers + 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(n)))
			var of []rawMember
			for range 3 * n {
				of = append(of, rawMember{key: fmt.Appendf(nil, "m%d", r.IntN(n+1))})
			}
			var s memberSet
			s.reset(of)
			want := map[string]bool{}
			var order []string
			for k, fd := range of {
				if got := s.has(fd.key); got != want[string(fd.key)] {
					t.Fatalf("has(%s) = %t after %d members, want %t", fd.key, got, k, !got)
				}
				if !want[string(fd.key)] {
					want[string(fd.key)] = true
					order = append(order, string(fd.key))
					s.add(k)
				}
			}
			if s.has([]byte("absent")) || s.len() != len(order) {
				t.Fatalf("len %d, want %d; or has an absent name", s.len(), len(order))
			}
			k := 0
			for fd := range s.all() {
				if string(fd.key) != order[k] {
					t.Fatalf("member %d is %s, want %s", k, fd.key, order[k])
				}
				k++
			}
		})
	}
}

// TestMessageKeepsTheLastOfManyRepeatedMembers repeats each of many unknown members three
// times, in an element and in the envelope: as in any JSON decoding the last counts, and
// extra holds each once.
func TestMessageKeepsTheLastOfManyRepeatedMembers(t *testing.T) {
	const names = 100
	r := rand.New(rand.NewPCG(2, 3))
	var members []string
	for k := range 3 * names {
		members = append(members, fmt.Sprintf(`"m%d":%d`, k%names, k))
	}
	r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	unknown := strings.Join(members, ",")
	body := userAgentBody("01JD3K9Q2W8E5R7T1Y4U6I0M01", `[{"id":"T","type":"transport","timestamp":1,`+unknown+`}]`)
	body = append([]byte(`{`+unknown+`,`), body[1:]...)
	rows, err := Message(sora.TypeUserAgent, body)
	if err != nil {
		t.Fatal(err)
	}
	checkLossless(t, body, rows)
	var want map[string]any
	if err := json.Unmarshal([]byte(`{`+unknown+`}`), &want); err != nil {
		t.Fatal(err)
	}
	var conn map[string]any
	if err := json.Unmarshal(rows.Connection.Extra, &conn); err != nil {
		t.Fatal(err)
	}
	extra := extraOf(t, "rtc_transport_stats", rows.Tables["rtc_transport_stats"][0])
	delete(conn, "id") // the envelope's own
	for where, got := range map[string]map[string]any{"element": extra, "envelope": conn} {
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want the last one, %v", where, k, got[k], v)
			}
		}
		if len(got) != names {
			t.Errorf("%s: %d members in extra, want %d", where, len(got), names)
		}
	}
}
