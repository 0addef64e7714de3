package normalize

// textCache boxes the text values of one message, one box for the same text: the ids that
// elements refer to each other by (transportId, codecId), kinds and states repeat within a
// report, and a string boxed in an interface is two allocations. It is a direct-mapped
// table, a slot per hash of the text, rather than a map: finding a text is one hash of at
// most 16 of its bytes and one comparison, and a text that meets another's slot only
// costs the boxes it would have cost anyway. About half the text values of a browser's
// report are found.
type textCache struct {
	slots [textSlots]textSlot
	// gen is the message's number: a slot of an earlier message's is free, so that a
	// text is shared within a message only, as the reports of one connection share little
	// with the next one's.
	gen uint32
}

type textSlot struct {
	text string
	box  any // text, boxed
	gen  uint32
}

const (
	textSlots    = 512
	textSlotBits = 9
	// maxCachedText is the longest text kept: browsers' ids are a few dozen bytes, and a
	// cache of at most 512 of them holds at most 64 KiB after its message is done.
	maxCachedText = 128
)

// renew returns c, or a new textCache when c is nil, ready for another message.
func (c *textCache) renew() *textCache {
	if c == nil {
		c = new(textCache)
	}
	c.gen++
	if c.gen == 0 { // wrapped: slots of 2^32 messages ago would look current
		c.slots = [textSlots]textSlot{}
		c.gen = 1
	}
	return c
}

// box returns text as a string in an interface, the same one as for an equal text earlier
// in the message when c still has it.
func (c *textCache) box(text []byte) any {
	if len(text) > maxCachedText {
		return string(text)
	}
	s := &c.slots[nameHash(text)>>(64-textSlotBits)]
	if s.gen == c.gen && s.text == string(text) {
		return s.box
	}
	str := string(text)
	*s = textSlot{text: str, box: str, gen: c.gen}
	return s.box
}
