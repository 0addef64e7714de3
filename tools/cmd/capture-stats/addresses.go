package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
)

// candidateAddressMembers are the RTCIceCandidateStats members that hold an IP address.
var candidateAddressMembers = []string{"address", "ip", "relatedAddress"}

// addressScrubber replaces this machine's own IP addresses in candidate stats by addresses
// from the documentation ranges (RFC 5737, RFC 3849), so that committed fixtures do not
// carry a developer's network. Loopback and unspecified addresses, empty strings (Chrome
// redacts peer-reflexive remote addresses) and mDNS names are kept as they are. The same
// address gets the same replacement in every report, so reports still agree.
type addressScrubber struct {
	replace map[string]string
	v4, v6  int
}

func newAddressScrubber() *addressScrubber {
	return &addressScrubber{replace: map[string]string{}}
}

// Scrub returns stats with every non-loopback candidate address replaced, wherever it
// occurs as a whole JSON string. Only those strings change: members, their order and every
// other byte stay as the browser serialized them.
func (a *addressScrubber) Scrub(stats json.RawMessage) (json.RawMessage, error) {
	var elems []map[string]json.RawMessage
	if err := json.Unmarshal(stats, &elems); err != nil {
		return nil, fmt.Errorf("decode stats: %w", err)
	}
	for _, e := range elems {
		var typ string
		json.Unmarshal(e["type"], &typ)
		if typ != "local-candidate" && typ != "remote-candidate" {
			continue
		}
		for _, m := range candidateAddressMembers {
			var s string
			if json.Unmarshal(e[m], &s) != nil {
				continue
			}
			ip, err := netip.ParseAddr(s)
			if err != nil || ip.IsLoopback() || ip.IsUnspecified() {
				continue
			}
			if _, ok := a.replace[s]; !ok {
				a.replace[s] = a.next(ip)
			}
		}
	}
	out := stats
	for from, to := range a.replace {
		// An IP address needs no JSON escaping, so its quoted form is exactly what the
		// browser wrote.
		out = bytes.ReplaceAll(out, []byte(strconv.Quote(from)), []byte(strconv.Quote(to)))
	}
	return out, nil
}

// next picks the next unused documentation address of ip's family.
func (a *addressScrubber) next(ip netip.Addr) string {
	if ip.Is4() || ip.Is4In6() {
		a.v4++
		return fmt.Sprintf("203.0.113.%d", a.v4) // TEST-NET-3
	}
	a.v6++
	return fmt.Sprintf("2001:db8::%x", a.v6)
}
