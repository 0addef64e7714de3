// Package sqltext reads PostgreSQL script text as far as Kohaku's schema tools need: where
// comments, quoted strings and identifiers, and dollar-quoted bodies start and end, so that
// a semicolon is taken for the end of a statement only outside them.
package sqltext

import "strings"

// Split cuts sql into its statements, without the comments in them: a semicolon ends a
// statement only outside comments, quoted strings and identifiers, and dollar-quoted
// bodies. Statements are trimmed, and empty ones dropped.
func Split(sql string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case strings.HasPrefix(sql[i:], "--"):
			i = LineCommentEnd(sql, i)
		case strings.HasPrefix(sql[i:], "/*"):
			i = BlockCommentEnd(sql, i)
		case c == '\'' || c == '"':
			j := QuotedEnd(sql, i)
			cur.WriteString(sql[i:j])
			i = j
		case c == '$' && DollarTag(sql[i:]) != "":
			j := DollarEnd(sql, i)
			cur.WriteString(sql[i:j])
			i = j
		case c == ';':
			flush()
			i++
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	return out
}

// LineCommentEnd returns where the -- comment that starts at i ends: at its newline, which
// it leaves in place.
func LineCommentEnd(s string, i int) int {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(s)
}

// BlockCommentEnd returns the end of the /* comment that starts at i; such comments nest.
func BlockCommentEnd(s string, i int) int {
	depth := 0
	for j := i; j+1 < len(s); j++ {
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

// QuotedEnd returns the end of the string literal or quoted identifier whose quote (' or ")
// is at i; a doubled quote stands for one.
func QuotedEnd(s string, i int) int {
	q := s[i]
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

// DollarTag returns the $tag$ that opens a dollar-quoted string at the start of s, or ""
// when s does not start with one ($1 is a parameter, not a quote).
func DollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1]
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || j > 1 && c >= '0' && c <= '9':
		default:
			return ""
		}
	}
	return ""
}

// DollarEnd returns the end of the dollar-quoted string that starts at i, with its closing
// tag; i must start one (DollarTag is not "").
func DollarEnd(s string, i int) int {
	tag := DollarTag(s[i:])
	j := strings.Index(s[i+len(tag):], tag)
	if j < 0 {
		return len(s)
	}
	return i + len(tag) + j + len(tag)
}
