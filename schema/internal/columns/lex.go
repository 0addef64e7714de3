package columns

import "strings"

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
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case strings.HasPrefix(sql[i:], "/*"):
			i = blockCommentEnd(sql, i)
		case c == '\'' || c == '"':
			j := quotedEnd(sql, i, c)
			cur = append(cur, sql[i:j])
			i = j
		case c == '$':
			if tag, ok := dollarTag(sql[i:]); ok {
				j := strings.Index(sql[i+len(tag):], tag)
				if j < 0 {
					j = len(sql)
				} else {
					j = i + len(tag) + j + len(tag)
				}
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

// quotedEnd returns the end of the literal or identifier quoted with q that starts at i; a
// doubled quote stands for one.
func quotedEnd(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// blockCommentEnd returns the end of the comment that starts at i; such comments nest.
func blockCommentEnd(s string, i int) int {
	depth := 0
	for j := i; j < len(s)-1; j++ {
		switch s[j : j+2] {
		case "/*":
			depth++
			j++
		case "*/":
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// dollarTag returns the opening $tag$ of a dollar-quoted string at the start of s.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || j > 1 && c >= '0' && c <= '9':
		default:
			return "", false
		}
	}
	return "", false
}
