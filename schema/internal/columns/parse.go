package columns

import (
	"fmt"
	"slices"
	"strings"
)

// FromMigrations returns the columns of every table that the migrations create, applied in
// order. Statements that do not change columns (indexes, comments, UPDATE, DO blocks,
// constraints, defaults) are skipped; a statement that changes columns in a way this
// package cannot follow is an error naming the migration.
func FromMigrations(names, sqls []string) (Tables, error) {
	t := Tables{}
	for k, sql := range sqls {
		for _, stmt := range statements(sql) {
			if err := t.apply(stmt); err != nil {
				return nil, fmt.Errorf("columns: %s: %w", names[k], err)
			}
		}
	}
	return t, nil
}

// apply changes t as the statement, a list of tokens, does.
func (t Tables) apply(stmt []string) error {
	switch {
	case keywords(stmt, "CREATE", "TABLE"), keywords(stmt, "CREATE", "UNLOGGED", "TABLE"):
		return t.create(stmt)
	case keywords(stmt, "DROP", "TABLE"):
		rest := skip(stmt[2:], "IF", "EXISTS")
		for _, tok := range rest {
			if tok != "," && !isKeyword(tok, "CASCADE") && !isKeyword(tok, "RESTRICT") {
				delete(t, ident(tok))
			}
		}
		return nil
	case keywords(stmt, "ALTER", "TABLE"):
		return t.alter(stmt)
	}
	return nil
}

// create follows CREATE TABLE [IF NOT EXISTS] name (definitions).
func (t Tables) create(stmt []string) error {
	rest := stmt[2:]
	if isKeyword(stmt[1], "UNLOGGED") {
		rest = stmt[3:]
	}
	rest = skip(rest, "IF", "NOT", "EXISTS")
	if len(rest) < 2 || rest[1] != "(" {
		return fmt.Errorf("CREATE TABLE %s: only CREATE TABLE name (columns ...) is understood", strings.Join(rest, " "))
	}
	table := ident(rest[0])
	body, _, ok := group(rest[1:])
	if !ok {
		return fmt.Errorf("CREATE TABLE %s: unbalanced parentheses", table)
	}
	var cols []Column
	for _, def := range split(body) {
		if len(def) == 0 {
			continue
		}
		switch {
		case isKeyword(def[0], "CONSTRAINT"), isKeyword(def[0], "PRIMARY"), isKeyword(def[0], "UNIQUE"),
			isKeyword(def[0], "CHECK"), isKeyword(def[0], "FOREIGN"), isKeyword(def[0], "EXCLUDE"):
			continue
		case isKeyword(def[0], "LIKE"):
			return fmt.Errorf("CREATE TABLE %s: LIKE is not understood", table)
		}
		c, err := column(def)
		if err != nil {
			return fmt.Errorf("CREATE TABLE %s: %w", table, err)
		}
		cols = append(cols, c)
	}
	if _, ok := t[table]; !ok {
		t[table] = cols // IF NOT EXISTS: an existing table stays as it is
	}
	return nil
}

// alter follows ALTER TABLE [IF EXISTS] [ONLY] name action, action ...
func (t Tables) alter(stmt []string) error {
	rest := skip(stmt[2:], "IF", "EXISTS")
	rest = skip(rest, "ONLY")
	if len(rest) < 2 {
		return fmt.Errorf("ALTER TABLE: statement too short")
	}
	table := ident(rest[0])
	if isKeyword(rest[1], "RENAME") {
		return fmt.Errorf("ALTER TABLE %s RENAME is not understood: write that migration's check by hand", table)
	}
	for _, action := range split(rest[1:]) {
		if err := t.alterOne(table, action); err != nil {
			return fmt.Errorf("ALTER TABLE %s: %w", table, err)
		}
	}
	return nil
}

// alterOne follows one action of ALTER TABLE on table.
func (t Tables) alterOne(table string, a []string) error {
	if len(a) == 0 {
		return nil
	}
	cols, known := t[table]
	switch {
	case isKeyword(a[0], "ADD"):
		a = a[1:]
		if len(a) > 0 && (isKeyword(a[0], "CONSTRAINT") || isKeyword(a[0], "PRIMARY") || isKeyword(a[0], "UNIQUE") ||
			isKeyword(a[0], "CHECK") || isKeyword(a[0], "FOREIGN") || isKeyword(a[0], "EXCLUDE")) {
			return nil
		}
		a = skip(a, "COLUMN")
		a = skip(a, "IF", "NOT", "EXISTS")
		c, err := column(a)
		if err != nil {
			return err
		}
		if !known {
			return fmt.Errorf("ADD COLUMN %s: no earlier migration creates the table", c.Name)
		}
		if !slices.ContainsFunc(cols, func(g Column) bool { return g.Name == c.Name }) {
			t[table] = append(cols, c)
		}
	case isKeyword(a[0], "DROP") && len(a) > 1 && isKeyword(a[1], "CONSTRAINT"):
	case isKeyword(a[0], "DROP"):
		a = skip(a[1:], "COLUMN")
		a = skip(a, "IF", "EXISTS")
		if len(a) == 0 {
			return fmt.Errorf("DROP COLUMN without a name")
		}
		name := ident(a[0])
		t[table] = slices.DeleteFunc(cols, func(g Column) bool { return g.Name == name })
	case isKeyword(a[0], "ALTER"):
		a = skip(a[1:], "COLUMN")
		if len(a) < 2 {
			return fmt.Errorf("ALTER COLUMN: statement too short")
		}
		name := ident(a[0])
		var typ []string
		switch {
		case isKeyword(a[1], "TYPE"):
			typ = a[2:]
		case len(a) > 3 && isKeyword(a[1], "SET") && isKeyword(a[2], "DATA") && isKeyword(a[3], "TYPE"):
			typ = a[4:]
		default:
			return nil // SET/DROP NOT NULL, DEFAULT, STATISTICS, ...: the type stays
		}
		k := slices.IndexFunc(cols, func(g Column) bool { return g.Name == name })
		if k < 0 {
			return fmt.Errorf("ALTER COLUMN %s: no such column", name)
		}
		cols[k].Type = typeName(typ)
	case isKeyword(a[0], "RENAME"):
		return fmt.Errorf("RENAME is not understood: write that migration's check by hand")
	}
	return nil
}

// column reads a column definition: name, type, then constraints.
func column(def []string) (Column, error) {
	if len(def) < 2 {
		return Column{}, fmt.Errorf("column definition %q: want a name and a type", strings.Join(def, " "))
	}
	return Column{Name: ident(def[0]), Type: typeName(def[1:])}, nil
}

// typeName returns the type at the start of toks, which ends where a column constraint
// begins, lower case with single spaces.
func typeName(toks []string) string {
	var words []string
	for k, tok := range toks {
		if k > 0 && constraintWord(tok) {
			break
		}
		words = append(words, strings.ToLower(tok))
	}
	s := strings.Join(words, " ")
	s = strings.ReplaceAll(s, " (", "(")
	s = strings.ReplaceAll(s, "( ", "(")
	s = strings.ReplaceAll(s, " )", ")")
	s = strings.ReplaceAll(s, " ,", ",")
	// Other spellings of the catalog's types.
	switch s {
	case "int8":
		return "bigint"
	case "float8":
		return "double precision"
	case "bool":
		return "boolean"
	case "timestamp with time zone":
		return "timestamptz"
	}
	return s
}

// constraintWord reports whether tok begins a column constraint or option.
func constraintWord(tok string) bool {
	for _, w := range []string{"NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "CHECK", "REFERENCES",
		"CONSTRAINT", "COLLATE", "GENERATED", "COMPRESSION", "STORAGE", "USING"} {
		if isKeyword(tok, w) {
			return true
		}
	}
	return false
}

// keywords reports whether stmt starts with the keywords ws.
func keywords(stmt []string, ws ...string) bool {
	if len(stmt) < len(ws) {
		return false
	}
	for k, w := range ws {
		if !isKeyword(stmt[k], w) {
			return false
		}
	}
	return true
}

// skip returns toks without the keywords ws at its start, or toks when it does not start
// with them all.
func skip(toks []string, ws ...string) []string {
	if keywords(toks, ws...) {
		return toks[len(ws):]
	}
	return toks
}

// isKeyword reports whether tok is the unquoted keyword w, in any case.
func isKeyword(tok, w string) bool { return strings.EqualFold(tok, w) }

// ident returns the name that the identifier token tok stands for: unquoted and folded to
// lower case, or quoted and taken as written.
func ident(tok string) string {
	if strings.HasPrefix(tok, `"`) && strings.HasSuffix(tok, `"`) && len(tok) >= 2 {
		return strings.ReplaceAll(tok[1:len(tok)-1], `""`, `"`)
	}
	if i := strings.LastIndexByte(tok, '.'); i >= 0 {
		return ident(tok[i+1:]) // schema-qualified: the migrations run in one schema
	}
	return strings.ToLower(tok)
}

// group returns the tokens inside the parenthesized group that toks starts with, and the
// tokens after it.
func group(toks []string) (inside, after []string, ok bool) {
	depth := 0
	for k, tok := range toks {
		switch tok {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return toks[1:k], toks[k+1:], true
			}
		}
	}
	return nil, nil, false
}

// split cuts toks at the commas outside parentheses.
func split(toks []string) [][]string {
	var out [][]string
	depth, start := 0, 0
	for k, tok := range toks {
		switch tok {
		case "(":
			depth++
		case ")":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, toks[start:k])
				start = k + 1
			}
		}
	}
	return append(out, toks[start:])
}
