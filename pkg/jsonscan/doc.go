// Package jsonscan holds the JSON grammar (RFC 8259) that Kohaku checks request bodies
// with, as small primitives over a byte slice and an index, so that validation (sora) and
// normalization (normalize) read JSON the same way without allocating.
//
// The primitives take the body d and the index p where a token starts and return the
// index after it: SkipSpace, Literal, String (with the StringFlags that say what its
// escapes hold, and a Fault when it is not well formed) and Number. Unescape decodes a
// string that String accepted as encoding/json would.
//
// Walker.Value checks a whole value in one loop with an explicit stack of open
// containers, no call per member; its hooks let a caller check more than the grammar
// per container or per unusual number, never per byte. With MaxDepth set to StdMaxDepth
// it accepts exactly the texts that json.Valid and utf8.Valid both accept (encoding/json
// does not check UTF-8); FuzzValue holds it to that.
//
// Built with GOEXPERIMENT=simd on amd64 (the release build), String and Number find the
// end of a run of plain string bytes or digits with 16-byte vector comparisons when the
// CPU has AVX2 (runs_vector_amd64.go), and eight bytes at a time otherwise
// (runs_words.go); every result is the same. In that build Member also reads the common
// member of a stats report, a plain name with a plain string or a number, in one pass of
// vector comparisons over its first 48 bytes; elsewhere, and for any other member, the
// callers (Walker.Value among them) read it token by token, to the same result.
package jsonscan
