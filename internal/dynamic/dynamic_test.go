package dynamic_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixture is a real engine: a SQLite store with a real core (the admin
// URL is a sealed secret), a PostgreSQL database as the target, a group
// role with SELECT on one table and nothing on another.
type fixture struct {
	db fixtureStore
	// stored returns every byte the store holds (the SQLite files, or
	// every text and bytea column of the PostgreSQL store's tables).
	stored   func(t *testing.T) []byte
	core     *core.Core
	admin    *tokenward.Token
	engine   *dynamic.Engine
	pg       *dynamic.Postgres
	adminURL string
	group    string
	conn     *pgx.Conn    // superuser, on the target database
	nanos    atomic.Int64 // the clock
	mu       sync.Mutex
	logs     bytes.Buffer
	audit    []*tokenward.AuditEntry
}

// clock is the engine's and the core's time: f.nanos, moved by advance.
func (f *fixture) clock() time.Time { return time.Unix(0, f.nanos.Load()).UTC() }

func (f *fixture) advance(d time.Duration) { f.nanos.Add(int64(d)) }

// lease makes a lease of acme/prod/db for tok.
func (f *fixture) lease(t testing.TB, tok *tokenward.Token) (*tokenward.Lease, *dynamic.Credential) {
	t.Helper()
	l, cred, err := f.engine.Lease(t.Context(), tok, "acme", "prod", "db")
	if err != nil {
		t.Fatal(err)
	}
	return l, cred
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// fixtureStore is what the fixture needs of a store: both backends have it.
type fixtureStore interface {
	tokenward.Store
	tokenward.LeaseStore
}

func newFixture(t testing.TB, c *pgtest.Cluster) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenward.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := newFixtureOn(t, c, db)
	f.stored = func(t *testing.T) []byte {
		db.Close()
		file, _ := os.ReadFile(path)
		wal, _ := os.ReadFile(path + "-wal")
		return append(file, wal...)
	}
	return f
}

// newPGFixture is the fixture with its store on PostgreSQL too.
func newPGFixture(t testing.TB, c *pgtest.Cluster) *fixture {
	t.Helper()
	url := c.NewDatabase(t)
	db := postgres.NewDB(url)
	db.MaxConns = 4
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := newFixtureOn(t, c, db)
	f.stored = func(t *testing.T) []byte {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(context.Background(), `SELECT table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema = 'public' AND data_type IN ('text', 'bytea')`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Table, Column, Type string }])
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, col := range cols {
			expr := pgx.Identifier{col.Column}.Sanitize()
			if col.Type == "text" {
				expr = "convert_to(" + expr + ", 'UTF8')"
			}
			rows, err := conn.Query(context.Background(), "SELECT "+expr+" FROM "+pgx.Identifier{col.Table}.Sanitize())
			if err != nil {
				t.Fatal(err)
			}
			vals, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out = append(out, v...)
				out = append(out, 0)
			}
		}
		return out
	}
	return f
}

func newFixtureOn(t testing.TB, c *pgtest.Cluster, db fixtureStore) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{db: db}
	f.nanos.Store(time.Now().Truncate(time.Second).UnixNano())
	key := seal.NewKey()
	secret, err := core.Init(ctx, f.db, key, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	if f.core, err = core.New(ctx, f.db, key); err != nil {
		t.Fatal(err)
	}
	f.core.Now = f.clock
	if f.admin, err = f.core.Authenticate(ctx, secret, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateProject(ctx, f.admin, "acme", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	f.adminURL = c.NewDatabase(t)
	if _, err := f.core.PutSecret(ctx, f.admin, core.PutSecretInput{Project: "acme", Env: "prod", Name: "PG_ADMIN_URL", Value: []byte(f.adminURL)}); err != nil {
		t.Fatal(err)
	}
	if f.conn, err = pgx.Connect(ctx, f.adminURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close(context.Background()) })
	f.group = "app_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	if len(f.group) > 40 {
		f.group = f.group[:40]
	}
	f.exec(t, "DROP ROLE IF EXISTS "+f.group, "CREATE ROLE "+f.group+" NOLOGIN",
		"CREATE TABLE granted (id int)", "INSERT INTO granted VALUES (1)", "CREATE TABLE private (id int)",
		"GRANT SELECT ON granted TO "+f.group, "GRANT CREATE ON SCHEMA public TO "+f.group)
	t.Cleanup(func() {
		// Leave no role behind in the shared cluster.
		conn, err := pgx.Connect(context.Background(), c.DSN)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+f.group)
	})
	rs, err := f.core.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	f.pg = &dynamic.Postgres{Secrets: rs}
	t.Cleanup(f.pg.Close)
	f.engine = dynamic.New(f.db, map[string]dynamic.Kind{"postgres": f.pg})
	f.engine.Now = f.clock
	f.engine.Logger = slog.New(slog.NewTextHandler(lockedWriter{&f.mu, &f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.engine.Record = func(_ context.Context, e *tokenward.AuditEntry) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.audit = append(f.audit, e)
		return nil
	}
	return f
}

func (f *fixture) exec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := f.conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (f *fixture) source(t testing.TB, ttl, maxTTL time.Duration) *tokenward.DynamicSource {
	t.Helper()
	src, err := f.engine.PutSource(t.Context(), f.admin, &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: "db", Kind: "postgres",
		Config: map[string]string{"admin_secret": "acme/prod/PG_ADMIN_URL", "group": f.group}, TTL: ttl, MaxTTL: maxTTL}, false)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// token mints a service token (with expiry ttl, 0: none) that may read
// the source.
func (f *fixture) token(t testing.TB, name string, ttl time.Duration, grants ...string) *tokenward.Token {
	t.Helper()
	if len(grants) == 0 {
		grants = []string{"read:acme/prod/db"}
	}
	var gs tokenward.Grants
	for _, g := range grants {
		gs = append(gs, tokenward.MustParseGrant(g))
	}
	tok, _, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: name, Grants: gs, TTL: ttl,
		CI: map[string]string{"repository": "acme/app", "run_id": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) roleExists(t *testing.T, role string) bool {
	t.Helper()
	var n int
	if err := f.conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func connectAs(t *testing.T, dsn string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

func TestLeaseConnectsWithTheGroupsPrivilegesOnly(t *testing.T) {
	f := newFixture(t, pgtest.Shared(t))
	f.source(t, 15*time.Minute, 2*time.Hour)
	tok := f.token(t, "job", 0)
	l, cred := f.lease(t, tok)
	if l.State != tokenward.LeaseActive || !strings.HasPrefix(l.Role, dynamic.RolePrefix) || l.TokenID != tok.ID || l.Job != "acme/app#42" ||
		!l.ExpiresAt.Equal(f.clock().Add(15*time.Minute)) || !l.MaxExpiresAt.Equal(f.clock().Add(2*time.Hour)) || cred.User != l.Role {
		t.Fatalf("got lease %+v (user %s); want an active tw_ role of the token, 15m, max 2h", l, cred.User)
	}
	conn, err := connectAs(t, cred.Value)
	if err != nil {
		t.Fatalf("connect with the lease's URL: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM granted").Scan(&n); err != nil || n != 1 {
		t.Fatalf("read the group's table: got %d, %v; want 1 row", n, err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT * FROM private"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("read a table the group may not: got %v; want permission denied", err)
	}
	var until time.Time
	if err := f.conn.QueryRow(t.Context(), "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", l.Role).Scan(&until); err != nil || !until.Equal(l.ExpiresAt) {
		t.Fatalf("VALID UNTIL: got %v, %v; want the lease's expiry %v", until, err, l.ExpiresAt)
	}
	// Another token without read gets nothing, and no lease is recorded.
	other := f.token(t, "other", 0, "read:acme/prod/OTHER")
	if _, _, err := f.engine.Lease(t.Context(), other, "acme", "prod", "db"); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Fatalf("lease without read: got %v; want forbidden", err)
	}
	if ls, _ := f.db.Leases(t.Context(), tokenward.LeaseFilter{}); len(ls) != 1 {
		t.Fatalf("got %d leases; want 1", len(ls))
	}
}

func TestRenewCappedAtMaxTTL(t *testing.T) {
	f := newFixture(t, pgtest.Shared(t))
	f.source(t, 15*time.Minute, 30*time.Minute)
	tok := f.token(t, "job", 0)
	l, _ := f.lease(t, tok)
	validUntil := func(want time.Time) {
		t.Helper()
		var until time.Time
		if err := f.conn.QueryRow(t.Context(), "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", l.Role).Scan(&until); err != nil || !until.Equal(want) {
			t.Fatalf("VALID UNTIL: got %v, %v; want %v", until, err, want)
		}
	}
	f.advance(10 * time.Minute)
	r, warns, err := f.engine.Renew(t.Context(), tok, l.ID, 0)
	if err != nil || !r.ExpiresAt.Equal(f.clock().Add(15*time.Minute)) || len(warns) != 0 {
		t.Fatalf("renew within max ttl: got %+v, %q, %v; want expiry now+15m and no warning", r, warns, err)
	}
	validUntil(r.ExpiresAt)
	// Past the max TTL, the renewal is capped there, as Vault caps one,
	// with a warning naming it; the role's VALID UNTIL moves with it.
	f.advance(10 * time.Minute)
	for i, want := range []string{"capped", "at its max already"} {
		r, warns, err = f.engine.Renew(t.Context(), tok, l.ID, 0)
		if err != nil || !r.ExpiresAt.Equal(l.MaxExpiresAt) || len(warns) != 1 || !strings.Contains(warns[0], "max ttl, "+l.MaxExpiresAt.Format(time.RFC3339)) {
			t.Fatalf("renew %d (%s): got %+v, %q, %v; want expiry at the max %v and one warning naming it", i, want, r, warns, err, l.MaxExpiresAt)
		}
		if got, _ := f.db.Lease(t.Context(), l.ID); !got.ExpiresAt.Equal(l.MaxExpiresAt) {
			t.Fatalf("renew %d: stored expiry %v; want the max %v", i, got.ExpiresAt, l.MaxExpiresAt)
		}
		validUntil(l.MaxExpiresAt)
	}
	// An increment shorter than what is left shortens the lease, as in Vault.
	r, warns, err = f.engine.Renew(t.Context(), tok, l.ID, time.Minute)
	if err != nil || !r.ExpiresAt.Equal(f.clock().Add(time.Minute)) || len(warns) != 0 {
		t.Fatalf("renew by 1m: got %+v, %q, %v; want expiry now+1m", r, warns, err)
	}
	validUntil(r.ExpiresAt)
	// Expired: refused.
	f.advance(2 * time.Minute)
	if _, _, err := f.engine.Renew(t.Context(), tok, l.ID, 0); tokenward.ErrorCode(err) != tokenward.ECONFLICT || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("renew an expired lease: got %v; want a conflict", err)
	}
	// Someone else's lease is not found, not forbidden.
	other := f.token(t, "other", 0)
	if _, _, err := f.engine.Renew(t.Context(), other, l.ID, 0); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Fatalf("renew another token's lease: got %v; want not found", err)
	}
}

func TestRevokeEndsOpenSessionsAndDropsTheRole(t *testing.T) {
	f := newFixture(t, pgtest.Shared(t))
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	l, cred := f.lease(t, tok)
	conn, err := connectAs(t, cred.Value)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The job made a table (a migration): it outlives the role, owned by
	// the group.
	if _, err := conn.Exec(t.Context(), "CREATE TABLE made_by_job (id int)"); err != nil {
		t.Fatal(err)
	}
	r, err := f.engine.Revoke(t.Context(), tok, l.ID)
	if err != nil || r.State != tokenward.LeaseRevoked || r.Reason != "requested by "+tok.ID {
		t.Fatalf("revoke: got %+v, %v; want revoked at the token's request", r, err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Fatal("the open session still answers after revocation; want it terminated")
	}
	if f.roleExists(t, l.Role) {
		t.Fatalf("role %s still in pg_roles after revocation", l.Role)
	}
	var owner string
	if err := f.conn.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_job'").Scan(&owner); err != nil || owner != f.group {
		t.Fatalf("the job's table: owner %q, %v; want the group %s", owner, err, f.group)
	}
	if _, err := connectAs(t, cred.Value); err == nil {
		t.Fatal("a new login with the revoked credential worked")
	}
	// Revoking again changes nothing.
	if r, err := f.engine.Revoke(t.Context(), tok, l.ID); err != nil || r.State != tokenward.LeaseRevoked {
		t.Fatalf("revoke again: got %+v, %v; want revoked", r, err)
	}
	if len(f.audit) != 1 || f.audit[0].Action != "lease.revoked" || f.audit[0].Meta["lease"] != l.ID || f.audit[0].Meta["job"] != "acme/app#42" {
		t.Fatalf("audit: got %+v; want one lease.revoked entry naming the lease and job", f.audit)
	}
}

func TestTokenRevocationAndExpiryRevokeItsLeases(t *testing.T) {
	f := newFixture(t, pgtest.Shared(t))
	f.source(t, time.Hour, 2*time.Hour)
	// A just-in-time token lives 10 minutes: its lease no longer.
	jit := f.token(t, "jit", 10*time.Minute)
	l, _ := f.lease(t, jit)
	if !l.ExpiresAt.Equal(jit.ExpiresAt) || !l.MaxExpiresAt.Equal(jit.ExpiresAt) {
		t.Fatalf("lease expiry %v (max %v); want the token's %v", l.ExpiresAt, l.MaxExpiresAt, jit.ExpiresAt)
	}
	revoked := f.token(t, "revoked", 0)
	l2, _ := f.lease(t, revoked)
	keep := f.token(t, "keep", 0)
	l3, _ := f.lease(t, keep)
	// The hook revokes a revoked token's leases at once.
	if _, err := f.core.RevokeToken(t.Context(), f.admin, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := f.engine.RevokeToken(t.Context(), revoked.ID); err != nil || n != 1 || f.roleExists(t, l2.Role) {
		t.Fatalf("RevokeToken: got %d, %v (role left: %v); want 1 revoked, role gone", n, err, f.roleExists(t, l2.Role))
	}
	// Nothing is due before the JIT token expires; at its expiry, the sweep revokes its lease.
	if n, err := f.engine.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: got %d, %v; want 0", n, err)
	}
	f.advance(10 * time.Minute)
	if n, err := f.engine.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep at the token's expiry: got %d, %v; want 1", n, err)
	}
	got, _ := f.db.Lease(t.Context(), l.ID)
	if got.State != tokenward.LeaseRevoked || got.Reason != "expired" || f.roleExists(t, l.Role) {
		t.Fatalf("JIT lease: got %+v; want revoked (expired), role gone", got)
	}
	if got, _ := f.db.Lease(t.Context(), l3.ID); got.State != tokenward.LeaseActive || !f.roleExists(t, l3.Role) {
		t.Fatalf("another token's lease: got %s; want active, role kept", got.State)
	}
	// A revoked token whose hook never ran (another server, a crash) is
	// found by the sweep.
	if _, err := f.core.RevokeToken(t.Context(), f.admin, keep.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := f.engine.Sweep(t.Context()); err != nil || n != 1 || f.roleExists(t, l3.Role) {
		t.Fatalf("sweep after a revocation without hook: got %d, %v; want 1, role gone", n, err)
	}
}

// errCrash stands for the process dying between CREATE ROLE and the
// lease's activation: nothing after it runs.
var errCrash = errors.New("crash")

func TestOrphanedCreationIsSwept(t *testing.T) {
	f := newFixture(t, pgtest.Shared(t))
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	var role string
	f.engine.AfterCreate = func(l *tokenward.Lease) { role = l.Role; panic(errCrash) }
	func() {
		defer func() {
			if r := recover(); r != errCrash {
				t.Fatalf("got %v; want the crash", r)
			}
		}()
		f.engine.Lease(t.Context(), tok, "acme", "prod", "db")
	}()
	f.engine.AfterCreate = nil
	if !f.roleExists(t, role) {
		t.Fatal("the role was not created before the crash")
	}
	ls, _ := f.db.Leases(t.Context(), tokenward.LeaseFilter{})
	if len(ls) != 1 || ls[0].State != tokenward.LeaseCreating || ls[0].Role != role {
		t.Fatalf("after the crash: got %+v; want one lease 'creating' naming the role", ls)
	}
	// Not yet: its maker may still be working.
	if n, _ := f.engine.Sweep(t.Context()); n != 0 || !f.roleExists(t, role) {
		t.Fatalf("sweep right after: got %d; want 0, role kept", n)
	}
	f.advance(f.engine.StaleAfter)
	if n, err := f.engine.Sweep(t.Context()); err != nil || n != 1 || f.roleExists(t, role) {
		t.Fatalf("sweep after StaleAfter: got %d, %v; want 1, role gone", n, err)
	}
	got, _ := f.db.Lease(t.Context(), ls[0].ID)
	if got.State != tokenward.LeaseRevoked || got.Reason != "orphaned creation" {
		t.Fatalf("got %s (%s); want revoked, orphaned creation", got.State, got.Reason)
	}
}

func TestRevocationRetriedWhileTheDatabaseIsDown(t *testing.T) {
	c := pgtest.Start(t) // stopped and started: a cluster of its own
	f := newFixture(t, c)
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	l, _ := f.lease(t, tok)
	f.conn.Close(context.Background())
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	r, err := f.engine.Revoke(t.Context(), tok, l.ID)
	if err != nil || r.State != tokenward.LeaseRevoking || r.Attempts != 1 || r.Error == "" || !r.NextAttemptAt.Equal(f.clock().Add(f.engine.Backoff)) {
		t.Fatalf("revoke while down: got %+v, %v; want revoking, 1 attempt, retry after the backoff", r, err)
	}
	f.advance(f.engine.Backoff)
	if n, _ := f.engine.Sweep(t.Context()); n != 0 {
		t.Fatalf("sweep while down: got %d revoked; want 0", n)
	}
	got, _ := f.db.Lease(t.Context(), l.ID)
	if got.Attempts != 2 || !got.NextAttemptAt.Equal(f.clock().Add(2*f.engine.Backoff)) {
		t.Fatalf("second failure: got %d attempts, next %v; want 2, after twice the backoff", got.Attempts, got.NextAttemptAt)
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.engine.Sweep(t.Context()); n != 0 {
		t.Fatalf("sweep before the retry is due: got %d; want 0", n)
	}
	f.advance(2 * f.engine.Backoff)
	if n, err := f.engine.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("sweep when back: got %d, %v; want 1", n, err)
	}
	if f.conn, err = pgx.Connect(t.Context(), f.adminURL); err != nil {
		t.Fatal(err)
	}
	if f.roleExists(t, l.Role) {
		t.Fatal("the role survived the retried revocation")
	}
	if got, _ := f.db.Lease(t.Context(), l.ID); got.State != tokenward.LeaseRevoked || got.Error != "" {
		t.Fatalf("got %s (error %q); want revoked with the error cleared", got.State, got.Error)
	}
}

// TestConcurrentLeasesAreDistinctAndAllRevoked, with the lease store on
// SQLite and on PostgreSQL (whose caps are counted under row and advisory
// locks).
func TestConcurrentLeasesAreDistinctAndAllRevoked(t *testing.T) {
	c := pgtest.Shared(t)
	t.Run("sqlite", func(t *testing.T) { testConcurrentLeases(t, newFixture(t, c)) })
	t.Run("postgres", func(t *testing.T) { testConcurrentLeases(t, newPGFixture(t, c)) })
}

func testConcurrentLeases(t *testing.T, f *fixture) {
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0, "read:acme/prod/db", "revoke:acme/prod/*")
	const n = 200
	f.engine.Limits.PerToken = n
	creds := make([]*dynamic.Credential, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, c, err := f.engine.Lease(context.Background(), tok, "acme", "prod", "db")
			creds[i] = c
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	users := map[string]bool{}
	for _, c := range creds {
		users[c.User] = true
	}
	if len(users) != n {
		t.Fatalf("got %d distinct roles; want %d", len(users), n)
	}
	for _, c := range creds {
		conn, err := connectAs(t, c.Value)
		if err != nil {
			t.Fatalf("log in as %s: %v", c.User, err)
		}
		conn.Close(context.Background())
	}
	// The cap holds: one more is refused.
	if _, _, err := f.engine.Lease(t.Context(), tok, "acme", "prod", "db"); tokenward.ErrorCode(err) != tokenward.ERATELIMITED {
		t.Fatalf("lease %d: got %v; want rate_limited (the token's cap)", n+1, err)
	}
	revoked, err := f.engine.RevokePrefix(t.Context(), tok, "acme/prod/db")
	if err != nil || len(revoked) != n {
		t.Fatalf("revoke by prefix: got %d, %v; want %d", len(revoked), err, n)
	}
	var left int
	if err := f.conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tw\\_%' AND pg_has_role(rolname, $1, 'MEMBER')", f.group).Scan(&left); err != nil || left != 0 {
		t.Fatalf("roles left: %d, %v; want 0", left, err)
	}
	if live, _ := f.engine.LiveLeases(t.Context()); len(live) != 0 {
		t.Fatalf("live leases: got %v; want none", live)
	}
}

// TestNoPlaintextAnywhere: no generated password and not the admin URL's
// password in the store's file, the engine's log, the audit entries or
// the PostgreSQL server's statement log.
func TestNoPlaintextAnywhere(t *testing.T) {
	c := pgtest.Shared(t)
	t.Run("sqlite", func(t *testing.T) { testNoPlaintext(t, c, newFixture(t, c)) })
	t.Run("postgres", func(t *testing.T) { testNoPlaintext(t, c, newPGFixture(t, c)) })
}

func testNoPlaintext(t *testing.T, c *pgtest.Cluster, f *fixture) {
	f.exec(t, "ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()")
	t.Cleanup(func() {
		for _, s := range []string{"ALTER SYSTEM RESET log_statement", "SELECT pg_reload_conf()"} {
			if _, err := f.conn.Exec(context.Background(), s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	var passwords []string
	for range 3 {
		l, cred := f.lease(t, tok)
		passwords = append(passwords, cred.Password)
		if _, _, err := f.engine.Renew(t.Context(), tok, l.ID, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := f.engine.Revoke(t.Context(), tok, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A failing creation's error must not carry them either.
	f.exec(t, "DROP TABLE granted")
	src := f.source(t, 15*time.Minute, time.Hour)
	src.Config["creation_sql"] = "CREATE ROLE {{name}} LOGIN PASSWORD {{password}}; SELECT * FROM nonexistent_{{name}};"
	_, checkErr := f.engine.PutSource(t.Context(), f.admin, src, false)
	if checkErr == nil {
		t.Fatal("a failing creation SQL passed the check")
	}
	if _, err := f.engine.PutSource(t.Context(), f.admin, src, true); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.engine.Lease(t.Context(), tok, "acme", "prod", "db")
	if err == nil {
		t.Fatal("a failing creation SQL succeeded")
	}
	stored := f.stored(t)
	if !bytes.Contains(stored, []byte(dynamic.RolePrefix)) {
		t.Fatal("the store holds no role name: the search reads nothing")
	}
	pglog, _ := os.ReadFile(c.LogFile)
	if !bytes.Contains(pglog, []byte("CREATE ROLE")) {
		t.Fatal("the server's log holds no CREATE ROLE: the search reads nothing")
	}
	audit := fmt.Sprintf("%+v", f.audit)
	haystacks := map[string][]byte{"store": stored, "engine log": f.logs.Bytes(), "audit": []byte(audit),
		"postgres log": pglog, "error": []byte(err.Error()), "check's error": []byte(checkErr.Error())}
	needles := append([]string{c.Password}, passwords...)
	for where, hay := range haystacks {
		for _, n := range needles {
			if bytes.Contains(hay, []byte(n)) {
				t.Errorf("%s holds a password in plaintext", where)
			}
		}
		if bytes.Contains(hay, []byte(f.adminURL)) {
			t.Errorf("%s holds the admin URL", where)
		}
	}
}

// TestSourceIsCheckedBeforeItIsStored: a source whose database refuses its
// settings, or that cannot be reached, is neither stored nor replaces the
// one stored; the check leaves no role behind, and its errors hold no
// password. skip_check stores it anyway.
func TestSourceIsCheckedBeforeItIsStored(t *testing.T) {
	c := pgtest.Shared(t)
	f := newFixture(t, c)
	ctx := t.Context()
	// An admin role that may log in but not create roles.
	f.exec(t, "DROP ROLE IF EXISTS weak_admin", "CREATE ROLE weak_admin LOGIN PASSWORD 'weak-admin-password'")
	t.Cleanup(func() { f.conn.Exec(context.Background(), "DROP ROLE IF EXISTS weak_admin") })
	u, err := url.Parse(f.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("weak_admin", "weak-admin-password")
	for name, v := range map[string]string{"WEAK_ADMIN_URL": u.String(), "DOWN_ADMIN_URL": "postgres://admin:down-password@127.0.0.1:1/db?connect_timeout=2",
		"NOT_A_URL": "postgres://admin:bad-url-password@db:notaport/db"} {
		if _, err := f.core.PutSecret(ctx, f.admin, core.PutSecretInput{Project: "acme", Env: "prod", Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	tw := func() int {
		var n int
		if err := f.conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tw\_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rolesBefore := tw()
	good := f.source(t, 15*time.Minute, time.Hour)

	tests := []struct {
		name   string
		config map[string]string
		code   string
		want   string // in the error
	}{
		{"no such group", map[string]string{"group": "no_such_group"}, tokenward.EINVALID, `creation_sql: role "no_such_group" does not exist`},
		{"creation syntax", map[string]string{"creation_sql": "CREATE ROL {{name}} LOGIN PASSWORD {{password}};"}, tokenward.EINVALID, "creation_sql: syntax error"},
		{"creation fails later", map[string]string{"creation_sql": "CREATE ROLE {{name}} LOGIN PASSWORD {{password}}; GRANT SELECT ON no_such_table TO {{name}};"},
			tokenward.EINVALID, `creation_sql: relation "no_such_table" does not exist`},
		{"revocation fails", map[string]string{"revocation_sql": "DROP ROLE {{name}}; DROP TABLE no_such_table;"}, tokenward.EINVALID,
			`revocation_sql: table "no_such_table" does not exist`},
		{"admin may not create roles", map[string]string{"admin_secret": "acme/prod/WEAK_ADMIN_URL"}, tokenward.EINVALID, "creation_sql: permission denied"},
		{"database down", map[string]string{"admin_secret": "acme/prod/DOWN_ADMIN_URL"}, tokenward.EUNAVAILABLE, "connect with the admin secret: cannot connect to 127.0.0.1"},
		{"admin secret not a URL", map[string]string{"admin_secret": "acme/prod/NOT_A_URL", "url": "postgres://db.example/app"}, tokenward.EINVALID,
			"admin secret acme/prod/NOT_A_URL is not a valid connection URL"},
		{"admin secret not set", map[string]string{"admin_secret": "acme/prod/NO_SUCH_SECRET"}, tokenward.ENOTFOUND, "read admin secret acme/prod/NO_SUCH_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: "db", Kind: "postgres", TTL: time.Minute,
				Config: map[string]string{"admin_secret": "acme/prod/PG_ADMIN_URL", "group": f.group}}
			maps.Copy(src.Config, tt.config)
			_, err := f.engine.PutSource(ctx, f.admin, src, false)
			if tokenward.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PutSource: got %v (%s); want %s with %q", err, tokenward.ErrorCode(err), tt.code, tt.want)
			}
			for _, secret := range []string{c.Password, "weak-admin-password", "down-password", "bad-url-password"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error holds a password: %v", err)
				}
			}
			got, err := f.engine.Source(ctx, f.admin, "acme", "prod", "db")
			if err != nil || !maps.Equal(got.Config, good.Config) || got.TTL != good.TTL {
				t.Fatalf("the stored source: got %+v, %v; want it unchanged (%+v)", got, err, good)
			}
			if n := tw(); n != rolesBefore {
				t.Fatalf("the check left %d tw_ roles behind", n-rolesBefore)
			}
		})
	}
	t.Run("skip_check", func(t *testing.T) {
		src := &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: "db", Kind: "postgres", TTL: time.Minute,
			Config: map[string]string{"admin_secret": "acme/prod/DOWN_ADMIN_URL", "group": f.group}}
		got, err := f.engine.PutSource(ctx, f.admin, src, true)
		if err != nil || got.Config["admin_secret"] != "acme/prod/DOWN_ADMIN_URL" {
			t.Fatalf("PutSource skipping the check: got %+v, %v; want it stored", got, err)
		}
	})
	if n := tw(); n != rolesBefore {
		t.Fatalf("the check left %d tw_ roles behind", n-rolesBefore)
	}
}
