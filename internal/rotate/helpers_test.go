package rotate_test

// The machine's tests run over the real store: internal/sqlite for rotation
// records and policies, internal/core for sealed, labelled versions, as the
// server wires them. Those packages import this one, so these tests live in
// package rotate_test; export_test.go lends them the few internals they need.
// The dot import keeps them reading like the package's own code (as the
// standard library's external tests do).

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	. "github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// clock is an injectable clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is one tokenward database file with a machine over it.
type env struct {
	file  string
	key   []byte // the unseal key
	admin string // the admin token made by core.Init
	clock *clock
	logs  *syncBuffer
	envs  map[string]bool // project/env made by mustPut

	db      *sqlite.DB
	core    *core.Core
	tok     *tokenward.Token // admin, authenticated
	store   Store            // db.Rotations()
	secrets *core.RotationSecrets
	m       *Machine
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newEnv(tb testing.TB, rotators map[string]Rotator) *env {
	tb.Helper()
	e := &env{file: filepath.Join(tb.TempDir(), "tokenward.db"), key: seal.NewKey(), clock: newClock(), logs: &syncBuffer{}, envs: map[string]bool{}}
	e.open(tb, rotators)
	return e
}

// open opens the database (initialising it the first time) and builds a
// fresh core and machine over it, as a starting server does.
func (e *env) open(tb testing.TB, rotators map[string]Rotator) {
	tb.Helper()
	ctx := context.Background()
	db := sqlite.NewDB(e.file)
	db.Now = e.clock.Now
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if e.admin == "" {
		admin, err := core.Init(ctx, db, e.key, e.clock.Now())
		if err != nil {
			tb.Fatalf("core.Init: %v", err)
		}
		e.admin = admin
	}
	c, err := core.New(ctx, db, e.key)
	if err != nil {
		tb.Fatalf("core.New: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.Now, c.Logger = e.clock.Now, logger
	if e.tok, err = c.Authenticate(ctx, e.admin, "127.0.0.1"); err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	if e.secrets, err = c.RotationSecrets(); err != nil {
		tb.Fatal(err)
	}
	e.db, e.core, e.store = db, c, db.Rotations()
	e.m = NewMachine(e.store, e.secrets, rotators)
	e.m.Now = e.clock.Now
	e.m.Backoff = time.Minute
	e.m.Logger = logger
}

// restart closes the database and opens it again with a fresh machine, as
// after a crash of the server.
func (e *env) restart(tb testing.TB, rotators map[string]Rotator) {
	tb.Helper()
	if err := e.db.Close(); err != nil {
		tb.Fatal(err)
	}
	e.open(tb, rotators)
}

func (e *env) mustPolicy(tb testing.TB, p *Policy) {
	tb.Helper()
	if err := e.store.PutPolicy(context.Background(), p); err != nil {
		tb.Fatalf("PutPolicy: %v", err)
	}
}

// mustPut writes value as a new CURRENT version of path (project/env/name)
// as "secret set" does, creating the project and environment if needed.
func (e *env) mustPut(tb testing.TB, path, value string) int {
	tb.Helper()
	ctx := context.Background()
	parts := strings.Split(path, "/")
	if len(parts) != 3 {
		tb.Fatalf("mustPut: path %q: want project/env/NAME", path)
	}
	project, envName, name := parts[0], parts[1], parts[2]
	if !e.envs[project+"/"+envName] {
		_, err := e.core.CreateProject(ctx, e.tok, project, []string{envName})
		if tokenward.ErrorCode(err) == tokenward.ECONFLICT {
			err = e.core.CreateEnv(ctx, e.tok, project, envName)
		}
		if err != nil {
			tb.Fatalf("create %s/%s: %v", project, envName, err)
		}
		e.envs[project+"/"+envName] = true
	}
	meta, err := e.core.PutSecret(ctx, e.tok, core.PutSecretInput{Project: project, Env: envName, Name: name, Value: []byte(value)})
	if err != nil {
		tb.Fatalf("PutSecret: %v", err)
	}
	return meta.Version
}

// label returns the value labelled l, or "" if none.
func (e *env) label(tb testing.TB, path, l string) string {
	tb.Helper()
	v, err := e.secrets.Labeled(context.Background(), path, l)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return ""
	}
	if err != nil {
		tb.Fatalf("read %s of %s: %v", l, path, err)
	}
	return string(v.Value)
}

// upstream is a fake credential-checking system with a Rotator over it:
// it records which values it accepts, so tests can check that CURRENT
// always works. It survives "crashes" of the machine, like a real system.
type upstream struct {
	mu       sync.Mutex
	accepted map[string]bool
	n        int
	creates  int
	failTest bool
	discards int
}

func newUpstream(initial ...string) *upstream {
	u := &upstream{accepted: map[string]bool{}}
	for _, v := range initial {
		u.accepted[v] = true
	}
	return u
}

func (u *upstream) accepts(v string) bool { u.mu.Lock(); defer u.mu.Unlock(); return u.accepted[v] }

func (u *upstream) Validate(map[string]string) error { return nil }

func (u *upstream) Create(_ context.Context, req *Request) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	u.creates++
	return []byte("value-" + req.RotationID + "-" + string(rune('a'+u.n%26))), nil
}

func (u *upstream) Set(_ context.Context, req *Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.accepted[string(req.Pending)] = true
	return nil
}

func (u *upstream) Test(_ context.Context, req *Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failTest {
		return errors.New("upstream refused the new value")
	}
	if !u.accepted[string(req.Pending)] {
		return errors.New("upstream does not accept the pending value")
	}
	return nil
}

func (u *upstream) Revoke(_ context.Context, req *Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.accepted, string(req.Current))
	return nil
}

func (u *upstream) Discard(_ context.Context, req *Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.discards++
	delete(u.accepted, string(req.Pending))
	return nil
}

// catalog is an in-memory Catalog.
type catalog struct{ secrets []*tokenward.Secret }

func (c *catalog) add(path, owner string, tags ...string) {
	parts := strings.SplitN(path, "/", 3)
	c.secrets = append(c.secrets, &tokenward.Secret{Project: parts[0], Env: parts[1], Name: parts[2], Owner: owner, Tags: tags})
}

func (c *catalog) AllSecrets(context.Context) ([]*tokenward.Secret, error) { return c.secrets, nil }
