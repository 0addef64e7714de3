package normalize

import (
	"encoding/binary"
	"maps"
	"math/bits"
	"slices"
)

// Where typedRow puts a member of an element, other than a typed column (its index).
const (
	memberExtra = -1 // in extra
	memberSkip  = -2 // nowhere: the last type chose the table and the last id is stats_id
)

// places finds where the members of one table's elements go, by name. It does what a
// map[string]int does, for the few dozen names of one table, which are all known when the
// program starts: hashing 16 bytes of the name rather than all of it, and one comparison
// in a table at most half full. Finding a name is about a third of a map's work, and it is
// done for every member of every element the writer stores. The set is fixed, so no input
// can lengthen its probe sequences.
type places struct {
	slots []place // open addressing, linear probing; a slot without a name is free
	shift uint    // hash >> shift is a slot's index
}

type place struct {
	name string
	col  int
}

// newPlaces returns the places of the names of cols, each of which is a column index
// or memberSkip.
func newPlaces(cols map[string]int) places {
	size := 8
	for size < 2*len(cols) {
		size *= 2
	}
	p := places{slots: make([]place, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	for _, name := range slices.Sorted(maps.Keys(cols)) { // the same table in every run
		col := cols[name]
		i := p.start(nameHash([]byte(name)))
		for p.slots[i].name != "" {
			i = (i + 1) & (size - 1)
		}
		p.slots[i] = place{name: name, col: col}
	}
	return p
}

func (p *places) start(h uint64) int { return int(h >> p.shift) }

// of returns where the member named key goes: memberExtra for a name that p does not
// hold, as for the empty name.
func (p *places) of(key []byte) int {
	mask := len(p.slots) - 1
	for i := p.start(nameHash(key)); ; i = (i + 1) & mask {
		s := &p.slots[i]
		if s.name == string(key) && s.name != "" {
			return s.col
		}
		if s.name == "" {
			return memberExtra
		}
	}
}

// nameHash mixes the length and the first and last eight bytes of a name, which tell
// the names of the W3C members apart well enough for a table at most half full.
func nameHash(key []byte) uint64 {
	var a, z uint64
	if len(key) >= 8 {
		a = binary.LittleEndian.Uint64(key)
		z = binary.LittleEndian.Uint64(key[len(key)-8:])
	} else {
		for k, c := range key {
			a |= uint64(c) << (8 * k)
		}
	}
	return (a*0x9e3779b97f4a7c15 ^ z*0xc2b2ae3d27d4eb4f ^ uint64(len(key))) * 0x9e3779b97f4a7c15
}
