// Package migrate copies a tokenward install between storage backends — a
// SQLite file and a PostgreSQL database, either way — row by row, sealed
// values as they are, and proves the copy: the same row count and content
// checksum for every table on both sides.
//
// Both backends store the same tables, columns and encodings (see
// internal/postgres's TestSchemaMatchesSQLite), so no value is decrypted and
// no master key is needed. The list of tables comes from each side's catalog
// at run time: a table one side has and the other does not is refused, never
// skipped.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
	"unicode/utf8"
)

// class is how a column stores its values on both backends.
type class byte

const (
	classInteger class = 'i' // SQLite INTEGER; PostgreSQL integer, bigint
	classText    class = 't' // TEXT; text
	classBytes   class = 'b' // BLOB; bytea
)

// column is one column of a table as one side names it in SQL.
type column struct {
	name  string
	class class
	// expr is how the side's SQL refers to it: the quoted name, or rowid
	// for SQLite's implicit twin of a PostgreSQL identity column
	// (rotations.seq).
	expr     string
	identity bool // PostgreSQL: an identity column, whose sequence is reset after a copy
}

// table is one table as one side's catalog describes it.
type table struct {
	name    string
	columns []column
	parents []string // tables its foreign keys reference
	// order is what the side orders the table's rows by when reading it
	// (insertion order where it has one), or "".
	order string
}

func (t *table) column(name string) (column, bool) {
	for _, c := range t.columns {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

// rows is a source's rows of one table, as Go values.
type rows interface {
	Next() bool
	Values() ([]any, error)
	Err() error
	Close()
}

// End is one side of a migration inside its transaction: read-only and
// consistent on the source, the one write transaction on the target.
type End interface {
	// describe names the side without what a connection string holds.
	describe() string
	sqlite() bool
	tables(ctx context.Context) (map[string]*table, error)
	versions(ctx context.Context) ([]int64, error)
	count(ctx context.Context, t string) (int64, error)
	read(ctx context.Context, t *table, cols []column) (rows, error)
	// write inserts every row next yields (nil at the end) and returns how
	// many.
	write(ctx context.Context, t *table, cols []column, next func() ([]any, error)) (int64, error)
	// finish runs after every table is copied: identity sequences follow
	// the copied ids.
	finish(ctx context.Context, ts []*table) error
	commit(ctx context.Context) error
	// Close ends the transaction (rolled back unless committed) and the
	// connection.
	Close()
}

// Table is the outcome of one table's copy.
type Table struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	// Checksum is SHA-256 over the sorted SHA-256 digests of the canonical
	// form of every row, computed on the source as read; ChecksumOK says
	// the target, read back before the commit, gives the same.
	Checksum   string `json:"checksum"`
	ChecksumOK bool   `json:"checksum_ok"`
}

// Result is what a migration copied.
type Result struct {
	From          string  `json:"from"`
	To            string  `json:"to"`
	SchemaVersion int64   `json:"schema_version"`
	Tables        []Table `json:"tables"`
}

// Copy copies every table of from into to, which must be empty and at the
// same schema version, in one transaction on to; it commits only when every
// table's row count and checksum read back from to match from's. It
// returns the per-table result; on any error to is left as it was.
func Copy(ctx context.Context, from, to End) (*Result, error) {
	res := &Result{From: from.describe(), To: to.describe()}
	fromVer, err := from.versions(ctx)
	if err != nil {
		return nil, err
	}
	toVer, err := to.versions(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(fromVer, toVer) {
		return nil, fmt.Errorf("schema versions differ: %s has migrations %s, %s has %s; start this tokenward's server once on the older side to bring it up to date (or use the tokenward that matches it)",
			from.describe(), versionList(fromVer), to.describe(), versionList(toVer))
	}
	if len(toVer) > 0 {
		res.SchemaVersion = toVer[len(toVer)-1]
	}
	fromTables, err := from.tables(ctx)
	if err != nil {
		return nil, err
	}
	toTables, err := to.tables(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := match(from, to, fromTables, toTables)
	if err != nil {
		return nil, err
	}
	for _, p := range plan {
		n, err := to.count(ctx, p.to.name)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("the target %s is not empty (table %s has %d rows): migrate only into a new, empty install", to.describe(), p.to.name, n)
		}
	}
	for _, p := range plan {
		t, err := copyTable(ctx, from, to, p)
		if err != nil {
			return nil, err
		}
		res.Tables = append(res.Tables, t)
	}
	ts := make([]*table, len(plan))
	for i, p := range plan {
		ts[i] = p.to
	}
	if err := to.finish(ctx, ts); err != nil {
		return nil, err
	}
	for _, t := range res.Tables {
		if !t.ChecksumOK {
			return res, fmt.Errorf("table %s: the copy's checksum differs from the source's; nothing was written", t.Table)
		}
	}
	if err := to.commit(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

func versionList(vs []int64) string {
	if len(vs) == 0 {
		return "none"
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// step is one table to copy: the columns in the target's order, as each
// side refers to them.
type step struct {
	from, to         *table
	fromCols, toCols []column
}

// match pairs the two sides' tables and columns, refusing any difference,
// and orders the tables parents first (by the target's foreign keys).
func match(from, to End, fromTables, toTables map[string]*table) ([]step, error) {
	var onlyFrom, onlyTo []string
	for name := range fromTables {
		if toTables[name] == nil {
			onlyFrom = append(onlyFrom, name)
		}
	}
	for name := range toTables {
		if fromTables[name] == nil {
			onlyTo = append(onlyTo, name)
		}
	}
	if len(onlyFrom)+len(onlyTo) > 0 {
		slices.Sort(onlyFrom)
		slices.Sort(onlyTo)
		return nil, fmt.Errorf("the two schemas hold different tables (only in %s: %s; only in %s: %s); nothing was copied",
			from.describe(), orNone(onlyFrom), to.describe(), orNone(onlyTo))
	}
	order, err := parentsFirst(toTables)
	if err != nil {
		return nil, err
	}
	plan := make([]step, 0, len(order))
	for _, name := range order {
		ft, tt := rowidTwins(from, fromTables[name], toTables[name]), rowidTwins(to, toTables[name], fromTables[name])
		s := step{from: ft, to: tt}
		for _, tc := range tt.columns {
			fc, ok := ft.column(tc.name)
			if !ok {
				return nil, fmt.Errorf("table %s: column %s is only in %s; nothing was copied", name, tc.name, to.describe())
			}
			if fc.class != tc.class {
				return nil, fmt.Errorf("table %s: column %s is stored as %s in %s but as %s in %s; nothing was copied",
					name, tc.name, fc.class, from.describe(), tc.class, to.describe())
			}
			s.fromCols = append(s.fromCols, fc)
			s.toCols = append(s.toCols, tc)
		}
		for _, fc := range ft.columns {
			if _, ok := tt.column(fc.name); !ok {
				return nil, fmt.Errorf("table %s: column %s is only in %s; nothing was copied", name, fc.name, from.describe())
			}
		}
		plan = append(plan, s)
	}
	return plan, nil
}

// rowidTwins returns t, on side e, with SQLite's implicit rowid standing
// for each identity column the other side's twin has and t lacks
// (PostgreSQL's rotations.seq is SQLite's rowid there).
func rowidTwins(e End, t, twin *table) *table {
	if !e.sqlite() {
		return t
	}
	out := *t
	out.columns = slices.Clone(t.columns)
	for _, c := range twin.columns {
		if _, ok := t.column(c.name); !ok && c.identity && c.class == classInteger {
			out.columns = append(out.columns, column{name: c.name, class: classInteger, expr: "rowid"})
		}
	}
	return &out
}

func (c class) String() string {
	switch c {
	case classInteger:
		return "integer"
	case classText:
		return "text"
	case classBytes:
		return "bytes"
	}
	return "unknown"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// parentsFirst orders the tables so every table comes after the tables its
// foreign keys reference, by name where that leaves a choice.
func parentsFirst(ts map[string]*table) ([]string, error) {
	names := make([]string, 0, len(ts))
	for name := range ts {
		names = append(names, name)
	}
	slices.Sort(names)
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("foreign keys form a cycle (%s); cannot order the copy", strings.Join(append(path, name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		parents := slices.Clone(ts[name].parents)
		slices.Sort(parents)
		for _, p := range parents {
			if p == name || ts[p] == nil {
				continue // a self-reference, or a table outside the copy
			}
			if err := visit(p, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, name := range names {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// copyTable streams one table from the source into the target, then reads
// it back from the target and compares checksums.
func copyTable(ctx context.Context, from, to End, s step) (Table, error) {
	rs, err := from.read(ctx, s.from, s.fromCols)
	if err != nil {
		return Table{}, err
	}
	defer rs.Close()
	src := newChecksum()
	var readErr error
	n, err := to.write(ctx, s.to, s.toCols, func() ([]any, error) {
		if !rs.Next() {
			readErr = rs.Err()
			return nil, readErr
		}
		vs, err := rs.Values()
		if err == nil {
			vs, err = canonical(s.to.name, s.toCols, vs)
		}
		if err != nil {
			readErr = err
			return nil, err
		}
		src.add(s.toCols, vs)
		return vs, nil
	})
	if readErr != nil {
		return Table{}, fmt.Errorf("read %s from %s: %w", s.from.name, from.describe(), readErr)
	}
	if err != nil {
		return Table{}, err
	}
	rs.Close()
	if n != src.rows {
		return Table{}, fmt.Errorf("table %s: wrote %d rows of the %d read", s.to.name, n, src.rows)
	}
	got, err := sum(ctx, to, s.to, s.toCols)
	if err != nil {
		return Table{}, err
	}
	want := src.sum()
	return Table{Table: s.to.name, Rows: src.rows, Checksum: want, ChecksumOK: got.rows == src.rows && got.sum() == want}, nil
}

// sum computes a table's checksum on one side.
func sum(ctx context.Context, e End, t *table, cols []column) (*checksum, error) {
	rs, err := e.read(ctx, t, cols)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	c := newChecksum()
	for rs.Next() {
		vs, err := rs.Values()
		if err == nil {
			vs, err = canonical(t.name, cols, vs)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", t.name, e.describe(), err)
		}
		c.add(cols, vs)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", t.name, e.describe(), err)
	}
	return c, nil
}

// canonical turns a row as a driver returns it into the values both
// backends store for the columns' classes: int64, string or []byte, or nil
// for NULL. SQLite may hand back text as []byte (a value written as a
// blob into a TEXT column); PostgreSQL's integer comes as int32.
func canonical(tableName string, cols []column, vs []any) ([]any, error) {
	if len(vs) != len(cols) {
		return nil, fmt.Errorf("table %s: got %d values for %d columns", tableName, len(vs), len(cols))
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		c := cols[i]
		var ok bool
		switch c.class {
		case classInteger:
			switch x := v.(type) {
			case int64:
				out[i], ok = x, true
			case int32:
				out[i], ok = int64(x), true
			case int16:
				out[i], ok = int64(x), true
			case int:
				out[i], ok = int64(x), true
			}
		case classText:
			switch x := v.(type) {
			case string:
				out[i], ok = x, true
			case []byte:
				// PostgreSQL text holds UTF-8 only: refuse here, by column,
				// rather than fail somewhere inside the copy.
				out[i], ok = string(x), utf8.Valid(x)
			}
		case classBytes:
			switch x := v.(type) {
			case []byte:
				// SQLite's driver hands back a zero-length BLOB as a nil
				// slice, which both drivers would write as NULL: it is a
				// value, empty.
				if x == nil {
					x = []byte{}
				}
				out[i], ok = x, true
			case string:
				out[i], ok = []byte(x), true
			}
		}
		if v == nil {
			out[i], ok = nil, true
		}
		if !ok {
			// The type only: the value may be a secret's ciphertext or a
			// token hash, and never belongs in an error.
			return nil, fmt.Errorf("table %s, column %s: a %T value where %s is stored", tableName, c.name, v, c.class)
		}
	}
	return out, nil
}

// checksum accumulates a table's row count and the digests of its rows;
// the digests are sorted before the final hash, so the order each side
// returns rows in (and how each collates text) does not matter.
type checksum struct {
	rows    int64
	digests [][sha256.Size]byte
	h       hash.Hash
	buf     []byte
}

func newChecksum() *checksum { return &checksum{h: sha256.New()} }

// add records one canonical row: each value as its class, a NULL marker,
// or a length-prefixed text or byte string, so no two rows encode alike.
func (c *checksum) add(cols []column, vs []any) {
	b := c.buf[:0]
	for i, v := range vs {
		if v == nil {
			b = append(b, 'n')
			continue
		}
		b = append(b, byte(cols[i].class))
		switch x := v.(type) {
		case int64:
			b = binary.BigEndian.AppendUint64(b, uint64(x)) // #nosec G115 -- bit pattern of an int64 for a digest, not arithmetic
		case string:
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		case []byte:
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		}
	}
	c.buf = b
	c.rows++
	c.digests = append(c.digests, sha256.Sum256(b))
}

func (c *checksum) sum() string {
	slices.SortFunc(c.digests, func(a, b [sha256.Size]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
	c.h.Reset()
	for _, d := range c.digests {
		c.h.Write(d[:])
	}
	return hex.EncodeToString(c.h.Sum(nil))
}
