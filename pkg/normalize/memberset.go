package normalize

import (
	"bytes"
	"hash/maphash"
	"iter"
	"slices"
)

// memberSet is a set of the members of one object, in the order added, with distinct
// names: the members of an element that have no column, or the top-level fields of a body
// that have none. It tells whether it has a name in about the same time however large it
// is: by a scan while it is small, by a hash table of its own once it has manyMembers, so
// that an object with many unknown members costs time linear in them, not quadratic, while
// a browser's element, with a few, allocates nothing. It holds indexes into the object's
// members, not copies: 4 bytes a member, and 8 more for the table.
type memberSet struct {
	of    []rawMember // the object's members
	idx   []int32     // the set: indexes into of, in the order added
	slots []int32     // the hash table of the names: 1 + an index into idx, 0 when free; nil while small
	seed  maphash.Seed
	// seeded tells that seed was made: a Seed's zero value cannot hash.
	seeded bool
}

// manyMembers is about where scanning the names costs what hashing them does.
const manyMembers = 16

// reset empties s for the members of another object. A hash table, which only large
// objects need, is dropped rather than cleared, so that the next object never pays for
// the size of this one.
func (s *memberSet) reset(of []rawMember) {
	s.of, s.idx, s.slots = of, s.idx[:0], nil
}

func (s *memberSet) len() int { return len(s.idx) }

// all yields the members of s in the order they were added (or reversed).
func (s *memberSet) all() iter.Seq[rawMember] {
	return func(yield func(rawMember) bool) {
		for _, k := range s.idx {
			if !yield(s.of[k]) {
				return
			}
		}
	}
}

// reverse reverses the order of s.
func (s *memberSet) reverse() {
	slices.Reverse(s.idx)
	s.slots = nil // its indexes into idx are stale; s is only read from now on
}

// has reports whether s has a member named key.
func (s *memberSet) has(key []byte) bool {
	if s.slots == nil {
		for _, k := range s.idx {
			if bytes.Equal(s.of[k].key, key) {
				return true
			}
		}
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := maphash.Bytes(s.seed, key) & mask; ; i = (i + 1) & mask {
		j := s.slots[i]
		if j == 0 {
			return false
		}
		if bytes.Equal(s.of[s.idx[j-1]].key, key) {
			return true
		}
	}
}

// add adds of[k], whose name s does not have.
func (s *memberSet) add(k int) {
	s.idx = append(s.idx, int32(k))
	switch {
	case s.slots == nil && len(s.idx) < manyMembers:
	case 2*len(s.idx) > len(s.slots): // at most half full, so that probes stay short
		s.rebuild()
	default:
		s.insert(len(s.idx) - 1)
	}
}

// rebuild makes a hash table of the names of s, a power of two at least four times as
// large as s.
func (s *memberSet) rebuild() {
	if !s.seeded {
		s.seed, s.seeded = maphash.MakeSeed(), true
	}
	n := 1
	for n < 4*len(s.idx) {
		n <<= 1
	}
	s.slots = make([]int32, n)
	for j := range s.idx {
		s.insert(j)
	}
}

// insert puts idx[j] into the hash table, by linear probing.
func (s *memberSet) insert(j int) {
	mask := uint64(len(s.slots) - 1)
	i := maphash.Bytes(s.seed, s.of[s.idx[j]].key) & mask
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = int32(j + 1)
}
