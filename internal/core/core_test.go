package core_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

type fixture struct {
	path  string
	db    *sqlite.DB
	key   []byte
	core  *core.Core
	admin *tokenward.Token
}

func mustFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "tokenward.db"), key: seal.NewKey()}
	f.db = sqlite.NewDB(f.path)
	if err := f.db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	secret, err := core.Init(t.Context(), f.db, f.key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.core, err = core.New(t.Context(), f.db, f.key); err != nil {
		t.Fatal(err)
	}
	if f.admin, err = f.core.Authenticate(t.Context(), secret, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateProject(t.Context(), f.admin, "payments", []string{"prod", "dev"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) put(t *testing.T, env, name, value string) {
	t.Helper()
	if _, err := f.core.PutSecret(t.Context(), f.admin, core.PutSecretInput{Project: "payments", Env: env, Name: name, Value: []byte(value)}); err != nil {
		t.Fatal(err)
	}
}

// TestAADSwap copies one secret's stored ciphertext onto another row of the
// real SQLite file: the moved ciphertext must not open, and the error must
// not hold either value.
func TestAADSwap(t *testing.T) {
	f := mustFixture(t)
	f.put(t, "prod", "A", "value-of-A-0123")
	f.put(t, "prod", "B", "value-of-B-4567")
	f.put(t, "dev", "A", "value-of-devA-89")
	f.put(t, "prod", "A", "value-of-A-v2-xyz")
	raw, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, tc := range []struct {
		name     string
		from, to [4]any // env, name, version
	}{
		{"other name", [4]any{"prod", "A", 1}, [4]any{"prod", "B", 1}},
		{"other env", [4]any{"prod", "A", 1}, [4]any{"dev", "A", 1}},
		{"other version", [4]any{"prod", "A", 1}, [4]any{"prod", "A", 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ct []byte
			if err := raw.QueryRow(`SELECT ciphertext FROM secret_versions WHERE project='payments' AND env=? AND name=? AND version=?`, tc.from[0], tc.from[1], tc.from[2]).Scan(&ct); err != nil {
				t.Fatal(err)
			}
			var orig []byte
			raw.QueryRow(`SELECT ciphertext FROM secret_versions WHERE project='payments' AND env=? AND name=? AND version=?`, tc.to[0], tc.to[1], tc.to[2]).Scan(&orig)
			if _, err := raw.Exec(`UPDATE secret_versions SET ciphertext=? WHERE project='payments' AND env=? AND name=? AND version=?`, ct, tc.to[0], tc.to[1], tc.to[2]); err != nil {
				t.Fatal(err)
			}
			defer raw.Exec(`UPDATE secret_versions SET ciphertext=? WHERE project='payments' AND env=? AND name=? AND version=?`, orig, tc.to[0], tc.to[1], tc.to[2])
			_, value, err := f.core.GetSecret(t.Context(), f.admin, "payments", tc.to[0].(string), tc.to[1].(string), tc.to[2].(int))
			if err == nil {
				t.Fatalf("moved ciphertext opened to %q", value)
			}
			if tokenward.ErrorCode(err) != tokenward.EINTERNAL || strings.Contains(err.Error(), "value-of") {
				t.Fatalf("got %v; want an internal error without values", err)
			}
		})
	}
	// Untouched rows still open.
	if _, v, err := f.core.GetSecret(t.Context(), f.admin, "payments", "prod", "B", 0); err != nil || string(v) != "value-of-B-4567" {
		t.Fatalf("got %q, %v; want value-of-B-4567", v, err)
	}
}

// TestKeyRotation rotates the master key twice, online, and then restarts:
// every version stays readable and every data key is wrapped by the newest
// master key.
func TestKeyRotation(t *testing.T) {
	f := mustFixture(t)
	if _, err := f.core.CreateProject(t.Context(), f.admin, "billing", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 3 {
		v := fmt.Sprintf("secret-v%d", i+1)
		f.put(t, "prod", "KEY", v)
		want[fmt.Sprint(i+1)] = v
	}
	for want := uint32(2); want <= 3; want++ {
		got, err := f.core.RotateKeys(t.Context(), f.admin)
		if err != nil || got != want {
			t.Fatalf("RotateKeys: got %d, %v; want %d", got, err, want)
		}
		// New projects made after a rotation use the new key too.
		f.put(t, "dev", fmt.Sprint("AFTER_", want), "x")
	}
	keys, err := f.db.DataKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if id, _ := seal.KeyID(k.Wrapped); id != 3 {
			t.Fatalf("data key %s wrapped by master key %d; want 3", k.Project, id)
		}
	}
	// A fresh engine over the same store reads every version.
	c2, err := core.New(t.Context(), f.db, f.key)
	if err != nil {
		t.Fatal(err)
	}
	for v, val := range want {
		var n int
		fmt.Sscan(v, &n)
		_, got, err := c2.GetSecret(t.Context(), f.admin, "payments", "prod", "KEY", n)
		if err != nil || string(got) != val {
			t.Fatalf("version %d after rotation: got %q, %v; want %q", n, got, err, val)
		}
	}
	// A key rotation needs admin over everything.
	ro := &tokenward.Token{ID: "tok_ro", Grants: tokenward.Grants{tokenward.MustParseGrant("admin:payments/*/*")}}
	if _, err := f.core.RotateKeys(t.Context(), ro); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Fatalf("project admin rotated keys: %v", err)
	}
}

func TestWrongMasterKey(t *testing.T) {
	f := mustFixture(t)
	_, err := core.New(context.Background(), f.db, seal.NewKey())
	if err == nil || !strings.Contains(err.Error(), "master key does not open") {
		t.Fatalf("got %v; want a clear wrong-key error", err)
	}
	empty := sqlite.NewDB(filepath.Join(t.TempDir(), "x.db"))
	if err := empty.Open(); err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if _, err := core.New(context.Background(), empty, f.key); err == nil || !strings.Contains(err.Error(), "tokenward init") {
		t.Fatalf("got %v; want a hint to run init", err)
	}
}

// TestConcurrentPuts: writers that race on one secret all succeed, each
// with its own version, and each version holds its writer's value.
func TestConcurrentPuts(t *testing.T) {
	f := mustFixture(t)
	f.put(t, "prod", "KEY", "v0")
	const writers = 6
	var wg sync.WaitGroup
	versions := make([]int, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.core.PutSecret(context.Background(), f.admin, core.PutSecretInput{Project: "payments", Env: "prod", Name: "KEY", Value: []byte(fmt.Sprint("w", i))})
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			versions[i] = s.Version
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, v := range versions {
		if v < 2 || v > writers+1 || seen[v] {
			t.Fatalf("writer %d got version %d; want a distinct version in 2..%d", i, v, writers+1)
		}
		seen[v] = true
		_, got, err := f.core.GetSecret(t.Context(), f.admin, "payments", "prod", "KEY", v)
		if err != nil || string(got) != fmt.Sprint("w", i) {
			t.Fatalf("version %d: got %q, %v; want w%d", v, got, err, i)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	f := mustFixture(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.core.Now = func() time.Time { return now }
	tok, secret, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "short", Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.core.Authenticate(t.Context(), secret, "10.0.0.1"); err != nil || got.ID != tok.ID {
		t.Fatalf("got %v, %v; want %s", got, err, tok.ID)
	}
	now = now.Add(time.Hour)
	if _, err := f.core.Authenticate(t.Context(), secret, "10.0.0.1"); tokenward.ErrorCode(err) != tokenward.EUNAUTHORIZED || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("got %v; want expired", err)
	}
	// Last use is recorded in a batch.
	f.core.Close()
	got, _ := f.db.Token(t.Context(), tok.ID)
	if got.LastUsedIP != "10.0.0.1" || got.LastUsedAt.IsZero() {
		t.Fatalf("got last use %v from %q; want a time from 10.0.0.1", got.LastUsedAt, got.LastUsedIP)
	}
}

// TestTokenCache: a revocation through the engine takes effect at once
// despite the cache; so does one behind its back (another server or
// process) when the store has a change clock, as SQLite's has. A store
// without one is trusted for the TTL.
func TestTokenCache(t *testing.T) {
	f := mustFixture(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	noClock, err := core.New(t.Context(), struct{ tokenward.Store }{f.db}, f.key) // the store without its ChangeClock
	if err != nil {
		t.Fatal(err)
	}
	other := sqlite.NewDB(f.path) // a second handle on the file, as another process has
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	for _, c := range []*core.Core{f.core, noClock} {
		c.Now = func() time.Time { return now }
		c.TokenCacheTTL = 2 * time.Second
	}
	for _, tc := range []struct {
		name     string
		engine   *core.Core
		revoke   func(id string)
		advance  time.Duration
		accepted bool
	}{
		{"through the engine", f.core, func(id string) { f.core.RevokeToken(t.Context(), f.admin, id) }, 0, false},
		{"behind its back", f.core, func(id string) { f.db.RevokeToken(t.Context(), id, now) }, 0, false},
		{"by another handle", f.core, func(id string) { other.RevokeToken(t.Context(), id, now) }, 0, false},
		{"no clock, within ttl", noClock, func(id string) { f.db.RevokeToken(t.Context(), id, now) }, time.Second, true},
		{"no clock, after ttl", noClock, func(id string) { f.db.RevokeToken(t.Context(), id, now) }, 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, secret, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "c-" + strings.NewReplacer(" ", "-", ",", "").Replace(tc.name), Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second is answered from the cache
				if _, err := tc.engine.Authenticate(t.Context(), secret, ""); err != nil {
					t.Fatal(err)
				}
			}
			tc.revoke(tok.ID)
			now = now.Add(tc.advance)
			_, err = tc.engine.Authenticate(t.Context(), secret, "")
			if (err == nil) != tc.accepted {
				t.Fatalf("got %v; want accepted=%v", err, tc.accepted)
			}
		})
	}
}

// TestKeyringRotatedElsewhere: after another process rotates the master
// key, this engine wraps a new project's data key under the new one (it
// reads the keyring again because the store's clock moved), with a store
// clock or without one, and reads every value either way.
func TestKeyringRotatedElsewhere(t *testing.T) {
	f := mustFixture(t)
	f.put(t, "prod", "KEY", "before")
	other := sqlite.NewDB(f.path)
	if err := other.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	rotator, err := core.New(t.Context(), other, f.key)
	if err != nil {
		t.Fatal(err)
	}
	noClock, err := core.New(t.Context(), struct{ tokenward.Store }{f.db}, f.key)
	if err != nil {
		t.Fatal(err)
	}
	for i, engine := range []*core.Core{f.core, noClock} {
		term, err := rotator.RotateKeys(t.Context(), f.admin)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprint("p", i)
		if _, err := engine.CreateProject(t.Context(), f.admin, name, []string{"prod"}); err != nil {
			t.Fatal(err)
		}
		dk, err := f.db.DataKey(t.Context(), name, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := seal.KeyID(dk.Wrapped); err != nil || got != term {
			t.Errorf("engine %d: new data key wrapped by master key %d (%v); want %d, the one rotated in elsewhere", i, got, err, term)
		}
		if _, got, err := engine.GetSecret(t.Context(), f.admin, "payments", "prod", "KEY", 0); err != nil || string(got) != "before" {
			t.Errorf("engine %d: got %q, %v; want the value from before the rotations", i, got, err)
		}
	}
}

// TestEnvValuesShareOneBuffer: an environment fetch decrypts its values
// into one buffer, each value its own slice of it that cannot grow into
// the next, builds their associated data in one buffer too, and looks the
// data key up once: a cached fetch of twenty secrets made 41 allocations,
// two per value; now 6.
func TestEnvValuesShareOneBuffer(t *testing.T) {
	f := mustFixture(t)
	want := map[string]string{}
	for i := range 20 {
		name, value := fmt.Sprintf("K%02d", i), strings.Repeat(string(rune('a'+i)), 10+i)
		f.put(t, "prod", name, value)
		want[name] = value
	}
	vals, err := f.core.EnvValues(t.Context(), f.admin, "payments", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(want) {
		t.Fatalf("got %d values; want %d", len(vals), len(want))
	}
	for _, v := range vals {
		if string(v.Value) != want[v.Secret.Name] || cap(v.Value) != len(v.Value) {
			t.Errorf("%s: got %q (cap %d); want %q with no spare capacity", v.Secret.Name, v.Value, cap(v.Value), want[v.Secret.Name])
		}
	}
	clear(vals[0].Value) // as the answer's wipe does
	if string(vals[1].Value) != want[vals[1].Secret.Name] {
		t.Errorf("wiping %s changed %s to %q", vals[0].Secret.Name, vals[1].Secret.Name, vals[1].Value)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := f.core.EnvValues(context.Background(), f.admin, "payments", "prod"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Errorf("a cached fetch of 20 values: %.0f allocations; want at most 8", allocs)
	}
}
