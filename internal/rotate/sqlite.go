package rotate

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// SQLiteStore is a Store and a Secrets on one SQLite file: the reference
// implementation the main store ports. Values are sealed with AES-256-GCM
// under the key given to OpenSQLite, bound to their path and version.
type SQLiteStore struct {
	db   *sql.DB
	aead cipher.AEAD
	Now  func() time.Time
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS rotations (
	id TEXT PRIMARY KEY,
	path TEXT NOT NULL,
	rotator TEXT NOT NULL,
	config TEXT NOT NULL,
	grace INTEGER NOT NULL,
	reason TEXT NOT NULL,
	step TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	current_version INTEGER NOT NULL,
	pending_version INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	next_at INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	error TEXT NOT NULL,
	rev INTEGER NOT NULL
);
-- One rotation per secret at a time, enforced where it cannot race.
CREATE UNIQUE INDEX IF NOT EXISTS rotations_one_in_flight ON rotations(path) WHERE step NOT IN ('done', 'failed');
CREATE INDEX IF NOT EXISTS rotations_by_path ON rotations(path, created_at);
CREATE TABLE IF NOT EXISTS policies (
	path TEXT PRIMARY KEY,
	every INTEGER NOT NULL,
	cron TEXT NOT NULL,
	jitter INTEGER NOT NULL,
	grace INTEGER NOT NULL,
	rotator TEXT NOT NULL,
	config TEXT NOT NULL,
	disabled INTEGER NOT NULL,
	last_at INTEGER NOT NULL,
	next_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
	path TEXT NOT NULL,
	version INTEGER NOT NULL,
	rotation_id TEXT NOT NULL,
	sealed BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (path, version)
);
CREATE TABLE IF NOT EXISTS labels (
	path TEXT NOT NULL,
	label TEXT NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (path, label)
);
`

// OpenSQLite opens (creating if needed) the store in file, sealing values
// with key (32 bytes).
func OpenSQLite(ctx context.Context, file string, key []byte) (*SQLiteStore, error) {
	if len(key) != 32 {
		return nil, errInvalid("sqlite store: key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// WAL with synchronous=NORMAL: a crash never corrupts the file or
	// breaks a transaction in half; only power loss may drop the last
	// commits, which the state machine redoes idempotently.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One connection serialises writers; SQLite allows one anyway.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite: %w", err)
	}
	return &SQLiteStore{db: db, aead: aead, Now: time.Now}, nil
}

// Close closes the database.
func (s *SQLiteStore) Close() error { return s.db.Close() }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeConfig(c map[string]string) string {
	if len(c) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func decodeConfig(s string) (map[string]string, error) {
	var c map[string]string
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// CreateRotation implements Store.
func (s *SQLiteStore) CreateRotation(ctx context.Context, r *Rotation) error {
	r.Rev = 1
	_, err := s.db.ExecContext(ctx, `INSERT INTO rotations (id, path, rotator, config, grace, reason, step, attempt,
		current_version, pending_version, created_at, updated_at, next_at, finished_at, error, rev)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Path, r.Rotator, encodeConfig(r.Config), int64(r.Grace), r.Reason, string(r.Step), r.Attempt,
		r.CurrentVersion, r.PendingVersion, unixNano(r.CreatedAt), unixNano(r.UpdatedAt), unixNano(r.NextAt),
		unixNano(r.FinishedAt), r.Error, r.Rev)
	if isUniqueViolation(err) {
		return ErrInFlight
	}
	return err
}

// UpdateRotation implements Store.
func (s *SQLiteStore) UpdateRotation(ctx context.Context, r *Rotation) error {
	res, err := s.db.ExecContext(ctx, `UPDATE rotations SET step = ?, attempt = ?, current_version = ?,
		pending_version = ?, updated_at = ?, next_at = ?, finished_at = ?, error = ?, rev = rev + 1
		WHERE id = ? AND rev = ?`,
		string(r.Step), r.Attempt, r.CurrentVersion, r.PendingVersion, unixNano(r.UpdatedAt), unixNano(r.NextAt),
		unixNano(r.FinishedAt), r.Error, r.ID, r.Rev)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrStale
	}
	r.Rev++
	return nil
}

const rotationCols = `id, path, rotator, config, grace, reason, step, attempt, current_version, pending_version,
	created_at, updated_at, next_at, finished_at, error, rev`

func scanRotation(row interface{ Scan(...any) error }) (*Rotation, error) {
	var r Rotation
	var config, step string
	var grace, created, updated, next, finished int64
	if err := row.Scan(&r.ID, &r.Path, &r.Rotator, &config, &grace, &r.Reason, &step, &r.Attempt,
		&r.CurrentVersion, &r.PendingVersion, &created, &updated, &next, &finished, &r.Error, &r.Rev); err != nil {
		return nil, err
	}
	c, err := decodeConfig(config)
	if err != nil {
		return nil, err
	}
	r.Config, r.Grace, r.Step = c, time.Duration(grace), Step(step)
	r.CreatedAt, r.UpdatedAt, r.NextAt, r.FinishedAt = fromNano(created), fromNano(updated), fromNano(next), fromNano(finished)
	return &r, nil
}

// Rotation implements Store.
func (s *SQLiteStore) Rotation(ctx context.Context, id string) (*Rotation, error) {
	r, err := scanRotation(s.db.QueryRowContext(ctx, `SELECT `+rotationCols+` FROM rotations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("no rotation %q", tokenward.Printable(id))
	}
	return r, err
}

func (s *SQLiteStore) rotations(ctx context.Context, query string, args ...any) ([]*Rotation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+rotationCols+` FROM rotations `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Rotation
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InFlight implements Store.
func (s *SQLiteStore) InFlight(ctx context.Context) ([]*Rotation, error) {
	return s.rotations(ctx, `WHERE step NOT IN ('done', 'failed') ORDER BY created_at, rowid`)
}

// History implements Store.
func (s *SQLiteStore) History(ctx context.Context, path string, limit int) ([]*Rotation, error) {
	if limit <= 0 {
		limit = -1
	}
	return s.rotations(ctx, `WHERE ? = '' OR path = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`, path, path, limit)
}

// PutPolicy implements Store.
func (s *SQLiteStore) PutPolicy(ctx context.Context, p *Policy) error {
	disabled := 0
	if p.Disabled {
		disabled = 1
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO policies (path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (path) DO UPDATE SET every = excluded.every, cron = excluded.cron, jitter = excluded.jitter,
		grace = excluded.grace, rotator = excluded.rotator, config = excluded.config, disabled = excluded.disabled,
		last_at = excluded.last_at, next_at = excluded.next_at`,
		p.Path, int64(p.Every), p.Cron, int64(p.Jitter), int64(p.Grace), p.Rotator, encodeConfig(p.Config), disabled,
		unixNano(p.LastAt), unixNano(p.NextAt))
	return err
}

const policyCols = `path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at`

func scanPolicy(row interface{ Scan(...any) error }) (*Policy, error) {
	var p Policy
	var every, jitter, grace, last, next int64
	var config string
	var disabled int
	if err := row.Scan(&p.Path, &every, &p.Cron, &jitter, &grace, &p.Rotator, &config, &disabled, &last, &next); err != nil {
		return nil, err
	}
	c, err := decodeConfig(config)
	if err != nil {
		return nil, err
	}
	p.Config, p.Every, p.Jitter, p.Grace, p.Disabled = c, time.Duration(every), time.Duration(jitter), time.Duration(grace), disabled != 0
	p.LastAt, p.NextAt = fromNano(last), fromNano(next)
	return &p, nil
}

// Policy implements Store.
func (s *SQLiteStore) Policy(ctx context.Context, path string) (*Policy, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policies WHERE path = ?`, path))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("no rotation policy for %s", tokenward.Printable(path))
	}
	return p, err
}

func (s *SQLiteStore) policies(ctx context.Context, query string, args ...any) ([]*Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+policyCols+` FROM policies `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Policies implements Store.
func (s *SQLiteStore) Policies(ctx context.Context) ([]*Policy, error) {
	return s.policies(ctx, `ORDER BY path`)
}

// DuePolicies implements Store.
func (s *SQLiteStore) DuePolicies(ctx context.Context, now time.Time) ([]*Policy, error) {
	return s.policies(ctx, `WHERE disabled = 0 AND next_at <= ? ORDER BY next_at, path`, now.UnixNano())
}

func versionAAD(path string, n int) []byte {
	return []byte("tokenward-rotate-test-store\x00" + path + "\x00" + strconv.Itoa(n))
}

func (s *SQLiteStore) seal(path string, n int, value []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, value, versionAAD(path, n)), nil
}

func (s *SQLiteStore) open(path string, n int, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns {
		return nil, errors.New("sealed value is too short")
	}
	v, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], versionAAD(path, n))
	if err != nil {
		return nil, fmt.Errorf("open version %d of %s: %w", n, path, err)
	}
	return v, nil
}

// putVersion writes a new version and points label at it, in one transaction.
func (s *SQLiteStore) putVersion(ctx context.Context, path, rotationID, label string, value []byte) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE path = ?`, path).Scan(&n); err != nil {
		return 0, err
	}
	sealed, err := s.seal(path, n, value)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (path, version, rotation_id, sealed, created_at) VALUES (?, ?, ?, ?, ?)`,
		path, n, rotationID, sealed, s.Now().UnixNano()); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO labels (path, label, version) VALUES (?, ?, ?)
		ON CONFLICT (path, label) DO UPDATE SET version = excluded.version`, path, label, n); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// PutCurrent writes value as a new CURRENT version (a plain "secret set"),
// moving the old CURRENT to PREVIOUS. It is how tests and the integrator
// seed secrets.
func (s *SQLiteStore) PutCurrent(ctx context.Context, path string, value []byte) (int, error) {
	n, err := s.PutPending(ctx, path, "", value)
	if err != nil {
		return 0, err
	}
	return n, s.Promote(ctx, path, n)
}

// PutPending implements Secrets.
func (s *SQLiteStore) PutPending(ctx context.Context, path, rotationID string, value []byte) (int, error) {
	return s.putVersion(ctx, path, rotationID, LabelPending, value)
}

// Labeled implements Secrets.
func (s *SQLiteStore) Labeled(ctx context.Context, path, label string) (*Version, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM labels WHERE path = ? AND label = ?`, path, label).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("%s has no %s version", tokenward.Printable(path), label)
	}
	if err != nil {
		return nil, err
	}
	return s.Version(ctx, path, n)
}

// Version implements Secrets.
func (s *SQLiteStore) Version(ctx context.Context, path string, n int) (*Version, error) {
	v := &Version{Number: n}
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT rotation_id, sealed FROM versions WHERE path = ? AND version = ?`, path, n).
		Scan(&v.RotationID, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound("%s has no version %d", tokenward.Printable(path), n)
	}
	if err != nil {
		return nil, err
	}
	if v.Value, err = s.open(path, n, sealed); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT label FROM labels WHERE path = ? AND version = ? ORDER BY label`, path, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		v.Labels = append(v.Labels, l)
	}
	return v, rows.Err()
}

// Promote implements Secrets.
func (s *SQLiteStore) Promote(ctx context.Context, path string, n int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	label := func(l string) (int, error) {
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM labels WHERE path = ? AND label = ?`, path, l).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return v, err
	}
	cur, err := label(LabelCurrent)
	if err != nil {
		return err
	}
	if cur == n {
		return nil // already promoted: a repeat after a crash
	}
	pending, err := label(LabelPending)
	if err != nil {
		return err
	}
	if pending != n {
		return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s is not PENDING", n, tokenward.Printable(path))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM labels WHERE path = ? AND label IN (?, ?)`, path, LabelPending, LabelPrevious); err != nil {
		return err
	}
	if cur != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO labels (path, label, version) VALUES (?, ?, ?)`, path, LabelPrevious, cur); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO labels (path, label, version) VALUES (?, ?, ?)
		ON CONFLICT (path, label) DO UPDATE SET version = excluded.version`, path, LabelCurrent, n); err != nil {
		return err
	}
	return tx.Commit()
}

// Restore implements Secrets.
func (s *SQLiteStore) Restore(ctx context.Context, path string, n int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var cur, prev int
	err = tx.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT version FROM labels WHERE path = ? AND label = ?), 0),
		COALESCE((SELECT version FROM labels WHERE path = ? AND label = ?), 0)`,
		path, LabelCurrent, path, LabelPrevious).Scan(&cur, &prev)
	if err != nil {
		return err
	}
	if cur == n {
		return nil
	}
	if prev != n {
		return tokenward.Errorf(tokenward.ECONFLICT, "version %d of %s is not PREVIOUS", n, tokenward.Printable(path))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM labels WHERE path = ? AND label = ?`, path, LabelPrevious); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE labels SET version = ? WHERE path = ? AND label = ?`, n, path, LabelCurrent); err != nil {
		return err
	}
	return tx.Commit()
}

// Unlabel implements Secrets.
func (s *SQLiteStore) Unlabel(ctx context.Context, path, label string, n int) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM labels WHERE path = ? AND label = ? AND version = ?`, path, label, n)
	return err
}

// ReadSecret implements SecretReader: the CURRENT value of path.
func (s *SQLiteStore) ReadSecret(ctx context.Context, path string) ([]byte, error) {
	v, err := s.Labeled(ctx, path, LabelCurrent)
	if err != nil {
		return nil, err
	}
	return v.Value, nil
}
