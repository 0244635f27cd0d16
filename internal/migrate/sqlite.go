package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // the same driver internal/sqlite uses
)

// sqliteEnd is a SQLite file inside one transaction.
type sqliteEnd struct {
	path string
	db   *sql.DB
	tx   *sql.Tx
}

// OpenSQLite opens the tokenward SQLite file at path, which must exist:
// read-only for a source (a consistent snapshot: one read transaction), or
// for writing in one transaction for a target. A target's schema is made
// beforehand by the store's own Open.
func OpenSQLite(ctx context.Context, path string, target bool) (End, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create a file here
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if target {
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: begin on %s: %w", path, err)
	}
	return &sqliteEnd{path: path, db: db, tx: tx}, nil
}

func (e *sqliteEnd) describe() string { return "SQLite " + e.path }
func (e *sqliteEnd) sqlite() bool     { return true }

func (e *sqliteEnd) fail(op string, err error) error {
	return fmt.Errorf("sqlite: %s on %s: %w", op, e.path, err)
}

func sqliteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (e *sqliteEnd) tables(ctx context.Context) (map[string]*table, error) {
	names, err := e.strings(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	ts := map[string]*table{}
	for _, name := range names {
		t := &table{name: name, order: "rowid"}
		rs, err := e.tx.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, name)
		if err != nil {
			return nil, e.fail("read the schema", err)
		}
		for rs.Next() {
			var col, typ string
			if err := rs.Scan(&col, &typ); err != nil {
				rs.Close()
				return nil, e.fail("read the schema", err)
			}
			c := column{name: col, expr: sqliteIdent(col), class: map[string]class{"INTEGER": classInteger, "TEXT": classText, "BLOB": classBytes}[strings.ToUpper(typ)]}
			if c.class == 0 {
				rs.Close()
				return nil, fmt.Errorf("sqlite: table %s, column %s: type %q is neither INTEGER, TEXT nor BLOB", name, col, typ)
			}
			t.columns = append(t.columns, c)
		}
		if err := rs.Err(); err != nil {
			return nil, e.fail("read the schema", err)
		}
		if t.parents, err = e.strings(ctx, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, name); err != nil {
			return nil, err
		}
		ts[name] = t
	}
	return ts, nil
}

func (e *sqliteEnd) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	return sqliteColumn[string](ctx, e, "read the schema", q, args...)
}

// sqliteColumn reads the one column q selects.
func sqliteColumn[T any](ctx context.Context, e *sqliteEnd, op, q string, args ...any) ([]T, error) {
	rs, err := e.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, e.fail(op, err)
	}
	defer rs.Close()
	var out []T
	for rs.Next() {
		var v T
		if err := rs.Scan(&v); err != nil {
			return nil, e.fail(op, err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		return nil, e.fail(op, err)
	}
	return out, nil
}

func (e *sqliteEnd) versions(ctx context.Context) ([]int64, error) {
	var n int
	if err := e.tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, e.fail("read the schema version", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("sqlite: %s is not a tokenward database (no schema_migrations table)", e.path)
	}
	return sqliteColumn[int64](ctx, e, "read the schema version", `SELECT version FROM schema_migrations ORDER BY version`)
}

func (e *sqliteEnd) count(ctx context.Context, t string) (int64, error) {
	var n int64
	if err := e.tx.QueryRowContext(ctx, `SELECT count(*) FROM `+sqliteIdent(t)).Scan(&n); err != nil {
		return 0, e.fail("count "+t, err)
	}
	return n, nil
}

func exprs(cols []column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.expr
	}
	return strings.Join(s, ", ")
}

func (e *sqliteEnd) read(ctx context.Context, t *table, cols []column) (rows, error) {
	q := `SELECT ` + exprs(cols) + ` FROM ` + sqliteIdent(t.name) // #nosec G202 -- table and column names come from the fixed schema, quoted by sqliteIdent
	if t.order != "" {
		q += ` ORDER BY ` + t.order
	}
	rs, err := e.tx.QueryContext(ctx, q)
	if err != nil {
		return nil, e.fail("read "+t.name, err)
	}
	return &sqlRows{Rows: rs, vals: make([]any, len(cols))}, nil
}

// sqlRows reads database/sql rows as values.
type sqlRows struct {
	*sql.Rows
	vals []any
}

func (r *sqlRows) Values() ([]any, error) {
	ptrs := make([]any, len(r.vals))
	for i := range r.vals {
		r.vals[i] = nil
		ptrs[i] = &r.vals[i]
	}
	if err := r.Scan(ptrs...); err != nil {
		return nil, err
	}
	return r.vals, nil
}

func (r *sqlRows) Close() { r.Rows.Close() }

func (e *sqliteEnd) write(ctx context.Context, t *table, cols []column, next func() ([]any, error)) (int64, error) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	stmt, err := e.tx.PrepareContext(ctx, `INSERT INTO `+sqliteIdent(t.name)+` (`+exprs(cols)+`) VALUES (`+marks+`)`) // #nosec G202 -- table and column names come from the fixed schema, quoted by sqliteIdent; values are bound
	if err != nil {
		return 0, e.fail("write "+t.name, err)
	}
	defer stmt.Close()
	var n int64
	for {
		vs, err := next()
		if vs == nil || err != nil {
			return n, err
		}
		if _, err := stmt.ExecContext(ctx, vs...); err != nil {
			// The statement's error names the constraint, never the values.
			return n, e.fail("write "+t.name, err)
		}
		n++
	}
}

// finish has nothing to do on SQLite: rowids follow the copied ids.
func (e *sqliteEnd) finish(context.Context, []*table) error { return nil }

func (e *sqliteEnd) commit(context.Context) error {
	if err := e.tx.Commit(); err != nil {
		return e.fail("commit", err)
	}
	return nil
}

func (e *sqliteEnd) Close() {
	e.tx.Rollback()
	e.db.Close()
}
