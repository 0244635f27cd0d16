package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/seal"
)

// server is one tokenward server of several on one database: its own
// store handle (pool and listener) and its own engine.
type server struct {
	db    *postgres.DB
	core  *core.Core
	admin *tokenward.Token
	// log is the store's log (slog's handler serialises its writes): read
	// it after db.Close.
	log *bytes.Buffer
}

// mustServers starts n servers on a fresh database, initialised by the
// first, each with the admin token authenticated.
func mustServers(t *testing.T, n int) []*server {
	t.Helper()
	ctx := t.Context()
	url := pgtest.Shared(t).NewDatabase(t)
	key := seal.NewKey()
	servers := make([]*server, n)
	var adminSecret string
	for i := range servers {
		s := &server{log: &bytes.Buffer{}}
		s.db = postgres.NewDB(url)
		s.db.MaxConns = 4
		s.db.Logger = slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if err := s.db.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.db.Close() })
		var err error
		if i == 0 {
			if adminSecret, err = core.Init(ctx, s.db, key, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if s.core, err = core.New(ctx, s.db, key); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.core.Close)
		if s.admin, err = s.core.Authenticate(ctx, adminSecret, ""); err != nil {
			t.Fatal(err)
		}
		servers[i] = s
	}
	return servers
}

// within polls cond until it holds or d has passed since start, and
// reports how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// crossServer is the promise of issue #14: a change on one server is
// refused or changed on every other within a second.
const crossServer = time.Second

// TestChangesReachOtherServers: a revocation, a change of expiry or
// grants, a deleted secret, a new version and a key rotation made on A
// are seen by B within a second, although B cached what it read before;
// on A itself at once.
func TestChangesReachOtherServers(t *testing.T) {
	ctx := t.Context()
	ss := mustServers(t, 2)
	a, b := ss[0], ss[1]
	if _, err := a.core.CreateProject(ctx, a.admin, "payments", []string{"prod", "dev"}); err != nil {
		t.Fatal(err)
	}
	put := func(env, value string) {
		t.Helper()
		if _, err := a.core.PutSecret(ctx, a.admin, core.PutSecretInput{Project: "payments", Env: env, Name: "KEY", Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	put("prod", "v1")
	put("dev", "d1")
	newToken := func(name string) (*tokenward.Token, string) {
		t.Helper()
		tok, secret, err := a.core.CreateToken(ctx, a.admin, core.CreateTokenInput{Name: name, Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/*/*")}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // B caches it
			if _, err := b.core.Authenticate(ctx, secret, ""); err != nil {
				t.Fatal(err)
			}
		}
		return tok, secret
	}
	refused := func(c *core.Core, secret string) func() bool {
		return func() bool {
			_, err := c.Authenticate(ctx, secret, "")
			return tokenward.ErrorCode(err) == tokenward.EUNAUTHORIZED
		}
	}
	read := func(c *core.Core, env string) (string, error) {
		_, v, err := c.GetSecret(ctx, b.admin, "payments", env, "KEY", 0)
		return string(v), err
	}
	conn := mustConn(t, a.db.URL)

	t.Run("revoke", func(t *testing.T) {
		tok, secret := newToken("revoke-me")
		if _, err := a.core.RevokeToken(ctx, a.admin, tok.ID); err != nil {
			t.Fatal(err)
		}
		if !refused(a.core, secret)() {
			t.Fatal("A: got the revoked token accepted; want refused at once")
		}
		took := within(t, crossServer, "B refuses the token revoked on A", refused(b.core, secret))
		t.Logf("B refused it after %v", took)
	})
	t.Run("shorten expiry", func(t *testing.T) {
		tok, secret := newToken("expire-me")
		// No command shortens a token's life yet; the column is what a
		// cache must follow.
		if _, err := conn.Exec(ctx, `UPDATE tokens SET expires_at = $1 WHERE id = $2`, time.Now().Add(-time.Minute).UnixNano(), tok.ID); err != nil {
			t.Fatal(err)
		}
		within(t, crossServer, "B refuses the token expired on A", refused(b.core, secret))
	})
	t.Run("suspend by grants", func(t *testing.T) {
		tok, secret := newToken("narrow-me")
		if err := a.db.ReplaceTokenGrants(ctx, tok.ID, tokenward.Grants{tokenward.MustParseGrant("read:other/*/*")}); err != nil {
			t.Fatal(err)
		}
		within(t, crossServer, "B sees the grants replaced on A", func() bool {
			got, err := b.core.Authenticate(ctx, secret, "")
			return err == nil && !got.Grants.Allows(tokenward.ActionRead, "payments", "prod", "KEY")
		})
	})
	t.Run("new version", func(t *testing.T) {
		if got, err := read(b.core, "prod"); err != nil || got != "v1" {
			t.Fatalf("B before: got %q, %v; want v1", got, err)
		}
		put("prod", "v2")
		if got, err := read(a.core, "prod"); err != nil || got != "v2" {
			t.Fatalf("A: got %q, %v; want v2 at once", got, err)
		}
		within(t, crossServer, "B reads the version written on A", func() bool {
			got, err := read(b.core, "prod")
			return err == nil && got == "v2"
		})
	})
	t.Run("delete secrets", func(t *testing.T) {
		if got, err := read(b.core, "dev"); err != nil || got != "d1" {
			t.Fatalf("B before: got %q, %v; want d1", got, err)
		}
		now := time.Now()
		if _, err := a.db.ArchiveEnv(ctx, &monitor.Archive{Project: "payments", Env: "dev", ArchivedAt: now, PurgeAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		within(t, crossServer, "B no longer finds the secret deleted on A", func() bool {
			_, err := read(b.core, "dev")
			return tokenward.ErrorCode(err) == tokenward.ENOTFOUND
		})
	})
	t.Run("rotate keyring", func(t *testing.T) {
		term, err := a.core.RotateKeys(ctx, a.admin)
		if err != nil {
			t.Fatal(err)
		}
		// B wraps a new project's data key under the keyring A made, not
		// the one it read at start.
		var got uint32
		within(t, crossServer, "B wraps new data keys under A's new master key", func() bool {
			name := fmt.Sprintf("p%d", time.Now().UnixNano())
			if _, err := b.core.CreateProject(ctx, b.admin, name, []string{"prod"}); err != nil {
				t.Fatal(err)
			}
			dk, err := b.db.DataKey(ctx, name, 1)
			if err != nil {
				t.Fatal(err)
			}
			got, err = seal.KeyID(dk.Wrapped)
			if err != nil {
				t.Fatal(err)
			}
			return got == term
		})
		if got, err := read(b.core, "prod"); err != nil || got != "v2" {
			t.Fatalf("B after the rotation: got %q, %v; want v2", got, err)
		}
	})
}

// TestOwnWritesMoveTheClockAtOnce: a write on this server moves its own
// generation before the write returns (#20: the next request sees it),
// notification or not.
func TestOwnWritesMoveTheClockAtOnce(t *testing.T) {
	ctx := t.Context()
	s := mustServers(t, 1)[0]
	before, ok := s.db.Generation()
	if !ok {
		t.Fatal("clock down after Open; want listening")
	}
	if _, err := s.core.CreateProject(ctx, s.admin, "payments", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if after, ok := s.db.Generation(); !ok || after <= before {
		t.Fatalf("generation after a write: got %d (ok %v); want above %d", after, ok, before)
	}
}

// TestListenerReconnects: while B's listener is cut off, B trusts no
// cache (a revocation on A is refused by B's next request, though its
// notification is lost); when the listener is back, the generation has
// moved past everything cached before. The listener's log names neither
// the URL nor the password.
func TestListenerReconnects(t *testing.T) {
	ctx := t.Context()
	ss := mustServers(t, 2)
	a, b := ss[0], ss[1]
	tok, secret, err := a.core.CreateToken(ctx, a.admin, core.CreateTokenInput{Name: "cut", Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/*/*")}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.core.Authenticate(ctx, secret, ""); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := b.db.Generation()
	oldPID := b.db.ListenerPID()
	conn := mustConn(t, pgtest.Shared(t).DSN)
	u, err := url.Parse(a.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	// New connections to the database are refused (B's pool keeps the
	// ones it has), so the listener stays down until allowed again.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+dbName+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	allowed := false
	allow := func() {
		if !allowed {
			allowed = true
			if _, err := conn.Exec(context.WithoutCancel(ctx), `ALTER DATABASE `+dbName+` ALLOW_CONNECTIONS true`); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer allow()
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(oldPID)); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "B's clock down after its listener's session ended", func() bool {
		_, ok := b.db.Generation()
		return !ok
	})
	if _, err := a.core.RevokeToken(ctx, a.admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.core.Authenticate(ctx, secret, ""); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
		t.Fatalf("B while its listener is down: got %v; want the token refused at once", err)
	}
	allow()
	within(t, 10*time.Second, "B's listener back", func() bool {
		_, ok := b.db.Generation()
		return ok
	})
	if after, _ := b.db.Generation(); after <= before {
		t.Errorf("generation after the reconnect: got %d; want above %d", after, before)
	}
	if pid := b.db.ListenerPID(); pid == 0 || pid == oldPID {
		t.Errorf("listener session: got pid %d; want a new one (old %d)", pid, oldPID)
	}
	if _, err := b.core.Authenticate(ctx, secret, ""); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED {
		t.Fatalf("B after the reconnect: got %v; want refused", err)
	}
	b.db.Close() // the listener writes no more
	log := b.log.String()
	if !strings.Contains(log, "change listener lost its connection") {
		t.Errorf("B's log: got %q; want the listener's loss reported", log)
	}
	if pw, ok := u.User.Password(); ok && strings.Contains(log, pw) || strings.Contains(log, a.db.URL) {
		t.Errorf("B's log holds the database password or URL: %q", log)
	}
}

// TestNotifyTriggersCoverCachedColumns: a token's update notifies for
// every column but its last use (which every server writes in batches and
// no cache holds), and every table a cache reads from has a trigger.
func TestNotifyTriggersCoverCachedColumns(t *testing.T) {
	conn := mustConn(t, MustOpenDB(t).URL)
	var cols, triggered []string
	rows := mustQuery(t, conn, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'tokens' ORDER BY column_name`)
	var col string
	if _, err := pgx.ForEachRow(rows, []any{&col}, func() error {
		if col != "last_used_at" && col != "last_used_ip" {
			cols = append(cols, col)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rows = mustQuery(t, conn, `SELECT a.attname FROM pg_trigger g JOIN pg_attribute a ON a.attrelid = g.tgrelid AND a.attnum = ANY (g.tgattr)
		WHERE g.tgname = 'tokens_update' ORDER BY a.attname`)
	if _, err := pgx.ForEachRow(rows, []any{&col}, func() error { triggered = append(triggered, col); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(triggered, cols) {
		t.Errorf("tokens_update fires on %v; want every column but the last use: %v", triggered, cols)
	}
	var tables []string
	rows = mustQuery(t, conn, `SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		WHERE NOT g.tgisinternal AND g.tgfoid = 'tokenward_notify_change'::regproc ORDER BY c.relname`)
	if _, err := pgx.ForEachRow(rows, []any{&col}, func() error { tables = append(tables, col); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"data_keys", "environments", "gateway_routes", "keyring", "oidc_bindings", "projects", "secret_labels", "secret_versions", "secrets", "tokens"}
	if !slices.Equal(tables, want) {
		t.Errorf("tables that notify: got %v; want %v", tables, want)
	}
}

// TestListenerSurvivesQuietSpells: a listener that waited in vain and
// pinged many times (every 5 ms here) still gets the next notification,
// on the same session.
func TestListenerSurvivesQuietSpells(t *testing.T) {
	ctx := t.Context()
	a := MustOpenDB(t)
	b := postgres.NewDB(a.URL)
	b.ListenCheckInterval = 5 * time.Millisecond
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pid := b.ListenerPID()
	time.Sleep(100 * time.Millisecond) // quiet spells, not an assertion
	before, ok := b.Generation()
	if !ok {
		t.Fatal("B's clock down after quiet spells; want up")
	}
	if err := a.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{}, CreatedAt: time.Now()}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	within(t, crossServer, "B notified of A's commit", func() bool {
		gen, ok := b.Generation()
		return ok && gen > before
	})
	if got := b.ListenerPID(); got != pid {
		t.Errorf("listener session: got pid %d; want the same %d (no reconnect)", got, pid)
	}
}

// TestNotificationsCarryNothing: a notification says only that something
// changed — no name, no token, no value — whatever the write held.
func TestNotificationsCarryNothing(t *testing.T) {
	ctx := t.Context()
	s := mustServers(t, 1)[0]
	listen := mustConn(t, s.db.URL)
	if _, err := listen.Exec(ctx, `LISTEN tokenward_change`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.core.CreateProject(ctx, s.admin, "payments", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.core.PutSecret(ctx, s.admin, core.PutSecretInput{Project: "payments", Env: "prod", Name: "KEY", Value: []byte("canary-notify-5e1f")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.core.CreateToken(ctx, s.admin, core.CreateTokenInput{Name: "n", Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/*/*")}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // one per transaction: the project, the secret, the token
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listen.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		if n.Payload != "" {
			t.Errorf("notification %d: got payload %q; want none", i, n.Payload)
		}
	}
}
