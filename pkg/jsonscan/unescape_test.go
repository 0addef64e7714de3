package jsonscan

import "testing"

func TestUnescapeDecodesAsEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"plain", `abc`, "abc"},
		{"short escapes", `\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t"},
		{"unicode", `caf\u00e9`, "café"},
		{"surrogate pair", `\ud83d\ude00`, "😀"},
		{"lone high surrogate", `\ud83dx`, "\uFFFDx"},
		{"high surrogate at the end", `\ud83d`, "\uFFFD"},
		{"lone low surrogate", `\ude00`, "\uFFFD"},
		{"high then non-surrogate escape", `\ud83d\u0041`, "\uFFFDA"},
		{"two high surrogates", `\ud83d\ud83d\ude00`, "\uFFFD😀"},
		{"NUL", `a\u0000b`, "a\x00b"},
		{"non-ASCII kept", `é`, "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Unescape(nil, []byte(tt.raw))); got != tt.want {
				t.Errorf("Unescape(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestUnescapeAppendsToDst(t *testing.T) {
	var buf [16]byte
	got := Unescape(append(buf[:0], "x="...), []byte(`\u0041`))
	if string(got) != "x=A" || &got[0] != &buf[0] {
		t.Errorf("Unescape = %q (in buf: %t), want \"x=A\" in buf", got, &got[0] == &buf[0])
	}
}
