package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgerr"
)

// pgEnd is a PostgreSQL database inside one transaction, on one
// connection. Every error is described through pgerr: pgx's own text can
// quote the connection string, password included.
type pgEnd struct {
	host string
	conn *pgx.Conn
	tx   pgx.Tx
}

// errBadURL is the refusal of a URL that does not parse; the URL is never
// repeated.
var errBadURL = errors.New("postgres: the URL does not parse (want postgres://user:password@host:port/db?sslmode=…)")

// OpenPostgres connects to the database at url: a read-only, repeatable-
// read transaction (one consistent snapshot) for a source, or the one
// write transaction for a target, whose schema is made beforehand by the
// store's own Open.
func OpenPostgres(ctx context.Context, url string, target bool) (End, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errBadURL
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %s", cfg.Host, pgerr.Error(err))
	}
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	if target {
		opts = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: begin on %s: %s", cfg.Host, pgerr.Error(err))
	}
	return &pgEnd{host: cfg.Host + "/" + cfg.Database, conn: conn, tx: tx}, nil
}

func (e *pgEnd) describe() string { return "PostgreSQL " + e.host }
func (e *pgEnd) sqlite() bool     { return false }

func (e *pgEnd) fail(op string, err error) error {
	return fmt.Errorf("postgres: %s on %s: %s", op, e.host, pgerr.Error(err))
}

func pgIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

var pgClasses = map[string]class{"smallint": classInteger, "integer": classInteger, "bigint": classInteger, "text": classText, "bytea": classBytes}

func (e *pgEnd) tables(ctx context.Context) (map[string]*table, error) {
	ts := map[string]*table{}
	rs, err := e.tx.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'`)
	if err != nil {
		return nil, e.fail("read the schema", err)
	}
	var name, col, typ, identity string
	if _, err := pgx.ForEachRow(rs, []any{&name}, func() error {
		ts[name] = &table{name: name}
		return nil
	}); err != nil {
		return nil, e.fail("read the schema", err)
	}
	rs, err = e.tx.Query(ctx, `SELECT table_name::text, column_name::text, data_type::text, is_identity::text FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		return nil, e.fail("read the schema", err)
	}
	var bad error
	if _, err := pgx.ForEachRow(rs, []any{&name, &col, &typ, &identity}, func() error {
		t := ts[name]
		if t == nil {
			return nil // a view, or schema_migrations
		}
		c := column{name: col, expr: pgIdent(col), class: pgClasses[typ], identity: identity == "YES"}
		if c.class == 0 && bad == nil {
			bad = fmt.Errorf("postgres: table %s, column %s: type %s is neither an integer, text nor bytea", name, col, typ)
		}
		if c.identity {
			t.order = c.expr
		}
		t.columns = append(t.columns, c)
		return nil
	}); err != nil {
		return nil, e.fail("read the schema", err)
	}
	if bad != nil {
		return nil, bad
	}
	var parent string
	rs, err = e.tx.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
		WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, e.fail("read the schema", err)
	}
	if _, err := pgx.ForEachRow(rs, []any{&name, &parent}, func() error {
		if t := ts[name]; t != nil {
			t.parents = append(t.parents, parent)
		}
		return nil
	}); err != nil {
		return nil, e.fail("read the schema", err)
	}
	return ts, nil
}

func (e *pgEnd) versions(ctx context.Context) ([]int64, error) {
	var exists bool
	if err := e.tx.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, e.fail("read the schema version", err)
	}
	if !exists {
		return nil, fmt.Errorf("postgres: %s is not a tokenward database (no schema_migrations table)", e.host)
	}
	rs, err := e.tx.Query(ctx, `SELECT version::bigint FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, e.fail("read the schema version", err)
	}
	vs, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	if err != nil {
		return nil, e.fail("read the schema version", err)
	}
	return vs, nil
}

func (e *pgEnd) count(ctx context.Context, t string) (int64, error) {
	var n int64
	if err := e.tx.QueryRow(ctx, `SELECT count(*) FROM `+pgIdent(t)).Scan(&n); err != nil {
		return 0, e.fail("count "+t, err)
	}
	return n, nil
}

func (e *pgEnd) read(ctx context.Context, t *table, cols []column) (rows, error) {
	q := `SELECT ` + exprs(cols) + ` FROM ` + pgIdent(t.name)
	if t.order != "" {
		q += ` ORDER BY ` + t.order
	}
	rs, err := e.tx.Query(ctx, q)
	if err != nil {
		return nil, e.fail("read "+t.name, err)
	}
	return pgRows{rs, e}, nil
}

// pgRows describes its errors through pgerr.
type pgRows struct {
	pgx.Rows
	e *pgEnd
}

func (r pgRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return r.e.fail("read", err)
	}
	return nil
}

func (e *pgEnd) write(ctx context.Context, t *table, cols []column, next func() ([]any, error)) (int64, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	var srcErr error
	n, err := e.tx.CopyFrom(ctx, pgx.Identifier{t.name}, names, pgx.CopyFromFunc(func() ([]any, error) {
		vs, err := next()
		srcErr = err
		return vs, err
	}))
	if srcErr != nil {
		return n, srcErr
	}
	if err != nil {
		return n, e.fail("write "+t.name, err)
	}
	return n, nil
}

// finish moves every identity sequence past the largest copied id, so the
// next row the server inserts gets a new one.
func (e *pgEnd) finish(ctx context.Context, ts []*table) error {
	for _, t := range ts {
		for _, c := range t.columns {
			if !c.identity {
				continue
			}
			q := `SELECT setval(pg_get_serial_sequence($1, $2), (SELECT COALESCE(max(` + c.expr + `), 0) FROM ` + pgIdent(t.name) + `) + 1, false)`
			if _, err := e.tx.Exec(ctx, q, pgIdent(t.name), c.name); err != nil {
				return e.fail("reset the sequence of "+t.name+"."+c.name, err)
			}
		}
	}
	return nil
}

func (e *pgEnd) commit(ctx context.Context) error {
	if err := e.tx.Commit(ctx); err != nil {
		return e.fail("commit", err)
	}
	return nil
}

func (e *pgEnd) Close() {
	e.tx.Rollback(context.Background())
	e.conn.Close(context.Background())
}
