package rotate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// clock is an injectable clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is one SQLite file with a machine over it.
type env struct {
	file  string
	key   []byte
	store *SQLiteStore
	clock *clock
	m     *Machine
	logs  *syncBuffer
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
	e := &env{file: filepath.Join(tb.TempDir(), "rotate.db"), key: make([]byte, 32), clock: newClock(), logs: &syncBuffer{}}
	rand.Read(e.key)
	e.open(tb, rotators)
	return e
}

// open (re)opens the store and builds a fresh machine over it, as a
// restarted server would.
func (e *env) open(tb testing.TB, rotators map[string]Rotator) {
	tb.Helper()
	s, err := OpenSQLite(context.Background(), e.file, e.key)
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	s.Now = e.clock.Now
	e.store = s
	e.m = NewMachine(s, s, rotators)
	e.m.Now = e.clock.Now
	e.m.Backoff = time.Minute
	e.m.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (e *env) mustPolicy(tb testing.TB, p *Policy) {
	tb.Helper()
	if err := e.store.PutPolicy(context.Background(), p); err != nil {
		tb.Fatalf("PutPolicy: %v", err)
	}
}

func (e *env) mustPut(tb testing.TB, path, value string) int {
	tb.Helper()
	n, err := e.store.PutCurrent(context.Background(), path, []byte(value))
	if err != nil {
		tb.Fatalf("PutCurrent: %v", err)
	}
	return n
}

// label returns the value labelled l, or "" if none.
func (e *env) label(tb testing.TB, path, l string) string {
	tb.Helper()
	v, err := e.store.Labeled(context.Background(), path, l)
	if err != nil {
		return ""
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
