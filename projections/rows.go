package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A fold projection's row is the []any its rowSink receives, one value per
// column of its table. The engine keeps rows as values: it compares them
// for the diff, and sends the changed ones to PostgreSQL as one typed array
// per column (binary, through unnest), which costs the server far less to
// read than the same rows as a JSON document.
//
// A column's values all have one of these Go types, which also say its
// array's SQL type: [16]byte (uuid), string (text), rawJSON (jsonb), bool,
// int64, *int64 (bigint, nil is NULL), time.Time, *time.Time (timestamptz).

// rawJSON is a column value that is already a JSON document.
type rawJSON string

// foldRows are rows per table, keyed by primary key (rowKey).
type foldRows map[string]map[string][]any

// rowsOf gives the rows of ps, whose tables are in tables, for the
// customer as fc has folded it.
func rowsOf(tables map[string]*table, ps []*projection, fc *foldCustomer) (foldRows, error) {
	out := rowCollector{tables: tables, rows: foldRows{}}
	for _, p := range ps {
		if p.fold.stretches != nil {
			p.fold.stretches(&out, &fc.state, fc.stretches.all)
		}
		if p.fold.rows != nil {
			p.fold.rows(&out, &fc.state)
		}
	}
	return out.rows, out.err
}

// rowCollector is the rowSink of a live batch: rows keyed for the diff.
type rowCollector struct {
	tables map[string]*table
	rows   foldRows
	err    error
}

func (c *rowCollector) add(name string, row ...any) {
	t := c.tables[name]
	if len(row) != len(t.columns) {
		c.err = fmt.Errorf("%s row: %d values for %d columns", name, len(row), len(t.columns))
		return
	}
	c.put(t, row)
}

// remove keeps the row, marked removed (see removed), for the diff to
// delete.
func (c *rowCollector) remove(name string, row ...any) {
	t := c.tables[name]
	switch {
	case !t.partial:
		c.err = fmt.Errorf("%s row removed: the table is not partial (a row it does not give is gone)", name)
		return
	case len(row) != len(t.columns):
		c.err = fmt.Errorf("%s row: %d values for %d columns", name, len(row), len(t.columns))
		return
	}
	c.put(t, append(row, removed{}))
}

func (c *rowCollector) put(t *table, row []any) {
	name := t.name
	k, err := rowKey(t, row)
	if err != nil {
		c.err = fmt.Errorf("%s row: %w", name, err)
		return
	}
	if c.rows[name] == nil {
		c.rows[name] = map[string][]any{}
	}
	c.rows[name][k] = row
}

// removed ends a row that a fold removed (foldSink.remove): past its
// columns, so that the key columns are where columnArrays reads them.
type removed struct{}

// isRemoved reports whether a collected row is one a fold removed.
func isRemoved(row []any) bool {
	if len(row) == 0 {
		return false
	}
	_, ok := row[len(row)-1].(removed)
	return ok
}

// rowKey encodes the row's primary key columns into a map key.
func rowKey(t *table, row []any) (string, error) {
	var b []byte
	for j, c := range t.columns {
		if !t.isKey(c) {
			continue
		}
		switch v := row[j].(type) {
		case [16]byte:
			b = append(b, v[:]...)
		case int64:
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		case string:
			b = append(append(b, v...), 0)
		default:
			return "", fmt.Errorf("key column %s: unsupported type %T", c, v)
		}
	}
	return string(b), nil
}

func (t *table) isKey(column string) bool { return slices.Contains(t.key, column) }

// sameValue reports whether two values of a row's column are the same
// (rows are compared with slices.EqualFunc(a, b, sameValue)).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case *time.Time:
		y, ok := b.(*time.Time)
		return ok && (x == nil) == (y == nil) && (x == nil || x.Equal(*y))
	case *int64:
		y, ok := b.(*int64)
		return ok && (x == nil) == (y == nil) && (x == nil || *x == *y)
	case [16]byte, string, rawJSON, bool, int64:
		return a == b
	default:
		return false // unknown types always count as changed; columnArrays refuses them
	}
}

// columnArrays turns rows of t into one typed array per column, and the
// SELECT list that reads them back as rows from unnest: the SQL of the
// source of an INSERT, or of the keys of a DELETE when keyOnly. Its three
// parts are written straight into builders: a live batch makes one per
// table it writes.
func columnArrays(w *stmt, t *table, rows [][]any, keyOnly bool) (string, error) {
	var sel, from, as strings.Builder
	sel.WriteString("SELECT ")
	from.WriteString(" FROM unnest(")
	as.WriteString(") AS u(")
	first := true
	for j, c := range t.columns {
		if keyOnly && !t.isKey(c) {
			continue
		}
		arr, typ, err := column(rows, j)
		if err != nil {
			return "", fmt.Errorf("%s.%s: %w", t.name, c, err)
		}
		if !first {
			sel.WriteString(", ")
			from.WriteString(", ")
			as.WriteString(", ")
		}
		first = false
		n := "u" + strconv.Itoa(j)
		from.WriteString(w.arg(arr))
		from.WriteString("::")
		from.WriteString(typ)
		from.WriteString("[]")
		as.WriteString(n)
		sel.WriteString(n)
		if _, ok := rows[0][j].(rawJSON); ok {
			sel.WriteString("::jsonb") // travels as text
		}
	}
	as.WriteString(")")
	return sel.String() + from.String() + as.String(), nil
}

// column collects column j of rows into a typed slice, with its element's
// SQL type.
func column(rows [][]any, j int) (any, string, error) {
	switch rows[0][j].(type) {
	case [16]byte:
		return collect[[16]byte](rows, j, "uuid")
	case string:
		return collect[string](rows, j, "text")
	case rawJSON:
		out := make([]string, len(rows))
		for i, r := range rows {
			v, ok := r[j].(rawJSON)
			if !ok {
				return nil, "", fmt.Errorf("row %d: %T among rawJSON", i, r[j])
			}
			out[i] = string(v)
		}
		return out, "text", nil
	case bool:
		return collect[bool](rows, j, "boolean")
	case int64:
		return collect[int64](rows, j, "bigint")
	case *int64:
		return collect[*int64](rows, j, "bigint")
	case time.Time:
		return collect[time.Time](rows, j, "timestamptz")
	case *time.Time:
		return collect[*time.Time](rows, j, "timestamptz")
	default:
		return nil, "", fmt.Errorf("unsupported type %T", rows[0][j])
	}
}

func collect[T any](rows [][]any, j int, typ string) (any, string, error) {
	out := make([]T, len(rows))
	for i, r := range rows {
		v, ok := r[j].(T)
		if !ok {
			return nil, "", fmt.Errorf("row %d: %T among %T", i, r[j], out[0])
		}
		out[i] = v
	}
	return out, typ, nil
}

// tableSQL are the parts of a table's write statements that are the same in
// every batch, made once per engine: building them again for each batch
// took about a fifth of a small live batch's Go time.
type tableSQL struct {
	// insert is "INSERT INTO t (columns) ", before the rows' source.
	insert string
	// onConflict ends an insert that updates a row already there
	// (ON CONFLICT (key) DO UPDATE SET every other column).
	onConflict string
	// deleteKeys is "DELETE FROM t WHERE (key) IN (", before the keys'
	// source and ")".
	deleteKeys string
}

func newTableSQL(t *table) tableSQL {
	id := pgx.Identifier{t.name}.Sanitize()
	var sets []string
	for _, c := range t.columns {
		if !t.isKey(c) {
			n := pgx.Identifier{c}.Sanitize()
			sets = append(sets, n+" = excluded."+n)
		}
	}
	onConflict := " ON CONFLICT (" + quoted(t.key) + ") DO NOTHING"
	if len(sets) > 0 {
		onConflict = " ON CONFLICT (" + quoted(t.key) + ") DO UPDATE SET " + strings.Join(sets, ", ")
	}
	return tableSQL{
		insert:     "INSERT INTO " + id + " (" + quoted(t.columns) + ") ",
		onConflict: onConflict,
		deleteKeys: "DELETE FROM " + id + " WHERE (" + quoted(t.key) + ") IN (",
	}
}

func quoted(cs []string) string {
	out := make([]string, len(cs))
	for k, c := range cs {
		out[k] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(out, ", ")
}

// copyData encodes rows in PostgreSQL's binary COPY format, each value by
// its Go type as listed above. pgx's CopyFrom looks up an encode plan for
// every value, a third of the Go time of a rebuild's final rows (which copy
// some fifteen million values).
func copyData(rows [][]any) ([]byte, error) {
	b := append(make([]byte, 0, 19+len(rows)*128), "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint64(b, 0) // flags, header extension length
	for _, r := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		for _, v := range r {
			var err error
			if b, err = appendCopyValue(b, v); err != nil {
				return nil, err
			}
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff), nil // end of data
}

// pgEpochMicros is 2000-01-01 UTC, the origin of PostgreSQL's binary
// timestamps, in microseconds since the Unix epoch.
const pgEpochMicros = 946_684_800_000_000

func appendCopyValue(b []byte, v any) ([]byte, error) {
	size := func(n int) []byte { return binary.BigEndian.AppendUint32(b, uint32(n)) }
	switch x := v.(type) {
	case [16]byte:
		return append(size(16), x[:]...), nil
	case string:
		return append(size(len(x)), x...), nil
	case rawJSON:
		return append(append(size(len(x)+1), 1), x...), nil // jsonb version 1, then the text
	case bool:
		if x {
			return append(size(1), 1), nil
		}
		return append(size(1), 0), nil
	case int64:
		return binary.BigEndian.AppendUint64(size(8), uint64(x)), nil
	case time.Time:
		return binary.BigEndian.AppendUint64(size(8), uint64(x.UnixMicro()-pgEpochMicros)), nil
	case *int64:
		if x == nil {
			return size(-1), nil // NULL
		}
		return appendCopyValue(b, *x)
	case *time.Time:
		if x == nil {
			return size(-1), nil
		}
		return appendCopyValue(b, *x)
	default:
		return nil, fmt.Errorf("copy: unsupported type %T", v)
	}
}
