package columns

import (
	"strings"

	"kohaku/schema/internal/sqltext"
)

// statements cuts sql into statements, each a list of tokens: words (keywords, names,
// numbers; a qualified name is one word), quoted identifiers and string literals with
// their quotes, a dollar-quoted body whole, and each other character (parentheses,
// commas) alone. Comments are dropped, and a semicolon ends a statement only outside
// quotes, comments and dollar-quoted bodies.
func statements(sql string) [][]string {
	var out [][]string
	var cur []string
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			i = sqltext.LineCommentEnd(sql, i)
		case strings.HasPrefix(sql[i:], "/*"):
			i = sqltext.BlockCommentEnd(sql, i)
		case c == '\'' || c == '"':
			j := sqltext.QuotedEnd(sql, i)
			cur = append(cur, sql[i:j])
			i = j
		case c == '$':
			if sqltext.DollarTag(sql[i:]) != "" {
				j := sqltext.DollarEnd(sql, i)
				cur = append(cur, sql[i:j])
				i = j
				continue
			}
			j := wordEnd(sql, i+1)
			cur = append(cur, sql[i:j])
			i = j
		case c == ';':
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			i++
		case wordByte(c):
			j := wordEnd(sql, i)
			cur = append(cur, sql[i:j])
			i = j
		default:
			cur = append(cur, sql[i:i+1])
			i++
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// wordByte reports whether c can be part of a word.
func wordByte(c byte) bool {
	return c == '_' || c == '.' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// wordEnd returns where the word that goes on at i ends.
func wordEnd(s string, i int) int {
	for i < len(s) && wordByte(s[i]) {
		i++
	}
	return i
}
