package sora

import "strconv"

// Defaults of Limits. They are sized on a 200-participant multistream room, measured by
// TestDefaultLimitsFitALargeRoom: a Chromium report (testsupport/fixtures) receiving 199
// participants' audio and video, where every received track adds an inbound-rtp, a
// remote-outbound-rtp and a codec element (an upper bound: Chrome shares codecs within a
// transport), has 1,221 elements in 736 KB, and its largest element (a video inbound-rtp)
// 51 members. The longest id a browser sends is a certificate's, "CF" and the
// fingerprint: 97 bytes for SHA-256, 195 for SHA-512.
const (
	// DefaultMaxElements is 4 times the large room's 1,221 elements: a report receiving
	// about 800 participants' audio and video.
	DefaultMaxElements = 5000
	// DefaultMaxMembers is 10 times the 51 members of the largest element captured, and
	// 7 times the largest W3C dictionary (RTCInboundRtpStreamStats, about 70 members with
	// those it inherits), leaving room for browsers' additions.
	DefaultMaxMembers = 500
	// DefaultMaxIDBytes is the bound of DESIGN.md section 2 on channel_id and client_id.
	DefaultMaxIDBytes = 255
)

// Limits bound the work that one accepted body may cause downstream (DESIGN.md section
// 1): every stats element becomes a row, every member a column or a key of extra, and a
// stats element's id is part of its row's natural key, whose btree index PostgreSQL keeps
// under about 2,700 bytes a row. A zero field stands for its default.
type Limits struct {
	// MaxElements bounds the stats array of a report.
	MaxElements int
	// MaxMembers bounds the members of one stats element and of the envelope, the
	// top-level object; members of the objects nested in them are not counted.
	MaxMembers int
	// MaxIDBytes bounds, in bytes of decoded UTF-8, a stats element's id and type and the
	// envelope's id, group_id, bundle_id and node_name (of which the stats ids of a
	// node.erlang-vm report's other elements are made). channel_id and client_id keep the
	// 255 bytes of DESIGN.md section 2 whatever it is.
	MaxIDBytes int
}

// withDefaults returns l with its zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxElements == 0 {
		l.MaxElements = DefaultMaxElements
	}
	if l.MaxMembers == 0 {
		l.MaxMembers = DefaultMaxMembers
	}
	if l.MaxIDBytes == 0 {
		l.MaxIDBytes = DefaultMaxIDBytes
	}
	return l
}

// LimitError is a body that asks for more work than Limits allow: more stats elements
// than MaxElements, or more members in one object than MaxMembers. Unlike a FieldError the
// body may be well formed; it is too large to take, and the receiver answers 413 with the
// error as its body. Field names the array or the object ("stats", "stats[3]", "" for the
// envelope).
type LimitError struct {
	Field string `json:"field,omitempty"`
	Msg   string `json:"error"`
}

func (e *LimitError) Error() string {
	if e.Field == "" {
		return "sora: " + e.Msg
	}
	return "sora: " + e.Field + ": " + e.Msg
}

// tooManyElements and tooManyMembers word the LimitErrors; they allocate, but only on
// failure.
func tooManyElements(limit int) *LimitError {
	return &LimitError{Field: "stats", Msg: "more than " + strconv.Itoa(limit) + " stats elements"}
}

func tooManyMembers(field string, limit int) *LimitError {
	what := "members"
	if field == "" {
		what = "top-level members"
	}
	return &LimitError{Field: field, Msg: "more than " + strconv.Itoa(limit) + " " + what}
}
