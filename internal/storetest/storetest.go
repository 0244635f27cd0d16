// Package storetest is the conformance suite every tokenward.Store backend
// must pass: call Run from the backend's tests with a constructor of fresh,
// empty stores.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// Run runs the whole suite; newStore returns a fresh, empty, open store
// (closed by the suite's cleanup).
func Run(t *testing.T, newStore func(t *testing.T) tokenward.Store) {
	runEach(t, newStore, []named[tokenward.Store]{
		{"Keyring", testKeyring},
		{"Projects", testProjects},
		{"Secrets", testSecrets},
		{"SecretConflicts", testSecretConflicts},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Tokens", testTokens},
		{"TouchTokens", testTouchTokens},
	}...)
}

// named is one test of a suite, run on a store of type S.
type named[S any] struct {
	name string
	fn   func(*testing.T, S)
}

// runEach runs every test as a subtest on a fresh store of its own,
// closed when the subtest ends.
func runEach[S interface{ Close() error }](t *testing.T, newStore func(*testing.T) S, tests ...named[S]) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// base is a fixed time with whole microseconds, so backends that store
// microseconds still compare equal.
var base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := tokenward.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q); want code %q", err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testKeyring(t *testing.T, s tokenward.Store) {
	_, err := s.Keyring(ctx)
	wantCode(t, err, tokenward.ENOTFOUND)
	must(t, s.InitKeyring(ctx, []byte("ring-1")))
	wantCode(t, s.InitKeyring(ctx, []byte("ring-x")), tokenward.ECONFLICT)
	got, err := s.Keyring(ctx)
	must(t, err)
	if string(got) != "ring-1" {
		t.Fatalf("got keyring %q; want ring-1", got)
	}
	must(t, s.CreateProject(ctx, &tokenward.Project{Name: "a", Envs: []string{"dev"}, CreatedAt: base}, &tokenward.DataKey{Project: "a", Version: 1, Wrapped: []byte("wa")}))
	must(t, s.CreateProject(ctx, &tokenward.Project{Name: "b", Envs: []string{"dev"}, CreatedAt: base}, &tokenward.DataKey{Project: "b", Version: 1, Wrapped: []byte("wb")}))
	keys, err := s.DataKeys(ctx)
	must(t, err)
	if len(keys) != 2 {
		t.Fatalf("got %d data keys; want 2", len(keys))
	}
	// A rotation must name every data key, or it is refused whole.
	wantCode(t, s.RotateKeyring(ctx, []byte("ring-1"), []byte("ring-2"), keys[:1]), tokenward.ECONFLICT)
	if got, _ := s.Keyring(ctx); string(got) != "ring-1" {
		t.Fatalf("a refused rotation changed the keyring to %q", got)
	}
	for _, k := range keys {
		k.Wrapped = append([]byte("re-"), k.Wrapped...)
	}
	// A rotation from a keyring that is not the stored one (another
	// rotation replaced it since it was read) is refused whole.
	wantCode(t, s.RotateKeyring(ctx, []byte("ring-0"), []byte("ring-2"), keys), tokenward.ECONFLICT)
	if got, _ := s.Keyring(ctx); string(got) != "ring-1" {
		t.Fatalf("a rotation from a stale keyring changed the keyring to %q", got)
	}
	if dk, _ := s.DataKey(ctx, "b", 1); dk == nil || string(dk.Wrapped) != "wb" {
		t.Fatalf("a rotation from a stale keyring changed a data key: %v", dk)
	}
	must(t, s.RotateKeyring(ctx, []byte("ring-1"), []byte("ring-2"), keys))
	got, _ = s.Keyring(ctx)
	dk, err := s.DataKey(ctx, "b", 1)
	must(t, err)
	if string(got) != "ring-2" || string(dk.Wrapped) != "re-wb" {
		t.Fatalf("after rotation got keyring %q, key %q; want ring-2, re-wb", got, dk.Wrapped)
	}
	_, err = s.DataKey(ctx, "b", 2)
	wantCode(t, err, tokenward.ENOTFOUND)
	raceRotations(t, s)
}

// raceRotations races 8 rotations from one keyring (8 servers that read
// it at once): exactly one replaces it, and the keyring and data keys are
// all that one's; the others get ECONFLICT. Two winners would each have
// named their new master key by the same id.
func raceRotations(t *testing.T, s tokenward.Store) {
	from, err := s.Keyring(ctx)
	must(t, err)
	const n = 8
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		keys, err := s.DataKeys(ctx)
		must(t, err)
		for _, k := range keys {
			k.Wrapped = fmt.Appendf(nil, "w%d-%s", i, k.Project)
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			errs[i] = s.RotateKeyring(ctx, from, fmt.Appendf(nil, "ring-3-%d", i), keys)
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("rotations %d and %d both replaced keyring %q", winner, i, from)
		case err == nil:
			winner = i
		default:
			wantCode(t, err, tokenward.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation of the race replaced the keyring")
	}
	got, err := s.Keyring(ctx)
	must(t, err)
	if want := fmt.Sprintf("ring-3-%d", winner); string(got) != want {
		t.Fatalf("after the race got keyring %q; want the winner's, %q", got, want)
	}
	keys, err := s.DataKeys(ctx)
	must(t, err)
	for _, k := range keys {
		if want := fmt.Sprintf("w%d-%s", winner, k.Project); string(k.Wrapped) != want {
			t.Fatalf("after the race data key %s is %q; want the winner's, %q", k.Project, k.Wrapped, want)
		}
	}
}

func newProject(t *testing.T, s tokenward.Store, name string, envs ...string) {
	t.Helper()
	must(t, s.CreateProject(ctx, &tokenward.Project{Name: name, Envs: envs, CreatedAt: base}, &tokenward.DataKey{Project: name, Version: 1, Wrapped: []byte("w")}))
}

func testProjects(t *testing.T, s tokenward.Store) {
	newProject(t, s, "payments", "prod", "dev", "staging")
	err := s.CreateProject(ctx, &tokenward.Project{Name: "payments", CreatedAt: base}, &tokenward.DataKey{Project: "payments", Version: 1, Wrapped: []byte("w")})
	wantCode(t, err, tokenward.ECONFLICT)
	// A failed create leaves nothing behind.
	err = s.CreateProject(ctx, &tokenward.Project{Name: "dup", Envs: []string{"a", "a"}, CreatedAt: base}, &tokenward.DataKey{Project: "dup", Version: 1, Wrapped: []byte("w")})
	if err == nil {
		t.Fatal("project with a repeated environment was created")
	}
	_, err = s.Project(ctx, "dup")
	wantCode(t, err, tokenward.ENOTFOUND)

	p, err := s.Project(ctx, "payments")
	must(t, err)
	if want := []string{"dev", "prod", "staging"}; !slices.Equal(p.Envs, want) || !p.CreatedAt.Equal(base) {
		t.Fatalf("got %v at %v; want %v at %v", p.Envs, p.CreatedAt, want, base)
	}
	must(t, s.CreateEnv(ctx, "payments", "qa", base))
	wantCode(t, s.CreateEnv(ctx, "payments", "qa", base), tokenward.ECONFLICT)
	wantCode(t, s.CreateEnv(ctx, "nope", "qa", base), tokenward.ENOTFOUND)
	newProject(t, s, "empty")
	ps, err := s.Projects(ctx)
	must(t, err)
	if len(ps) != 2 || ps[0].Name != "empty" || len(ps[0].Envs) != 0 || ps[1].Name != "payments" || len(ps[1].Envs) != 4 {
		t.Fatalf("got projects %+v; want empty (no envs), payments (4 envs)", ps)
	}
	_, err = s.Project(ctx, "nope")
	wantCode(t, err, tokenward.ENOTFOUND)
}

func version(n int, ct string) *tokenward.SecretVersion {
	return &tokenward.SecretVersion{Version: n, CreatedAt: base.Add(time.Duration(n) * time.Minute), CreatedBy: "tok_x", Ciphertext: []byte(ct)}
}

func testSecrets(t *testing.T, s tokenward.Store) {
	newProject(t, s, "p", "prod", "dev")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY", Owner: "team", Tags: []string{"pci"}, ExpiresAt: base.Add(48 * time.Hour)}
	must(t, s.PutSecret(ctx, meta, 0, version(1, "c1")))
	meta.Owner = "team2"
	must(t, s.PutSecret(ctx, meta, 1, version(2, "c2")))
	must(t, s.PutSecret(ctx, &tokenward.Secret{Project: "p", Env: "prod", Name: "A"}, 0, version(1, "a1")))

	got, err := s.Secret(ctx, "p", "prod", "KEY")
	must(t, err)
	if got.Version != 2 || got.Owner != "team2" || !slices.Equal(got.Tags, []string{"pci"}) || !got.ExpiresAt.Equal(meta.ExpiresAt) || !got.CreatedAt.Equal(base.Add(time.Minute)) || !got.UpdatedAt.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("got %+v; want version 2, owner team2, tags [pci], created at v1, updated at v2", got)
	}
	for _, tc := range []struct {
		v    int
		want string
	}{{1, "c1"}, {2, "c2"}} {
		v, err := s.SecretVersion(ctx, "p", "prod", "KEY", tc.v)
		must(t, err)
		if string(v.Ciphertext) != tc.want || v.CreatedBy != "tok_x" {
			t.Fatalf("version %d: got %q by %q; want %q by tok_x", tc.v, v.Ciphertext, v.CreatedBy, tc.want)
		}
	}
	_, err = s.SecretVersion(ctx, "p", "prod", "KEY", 3)
	wantCode(t, err, tokenward.ENOTFOUND)
	cur, cv, err := s.CurrentSecret(ctx, "p", "prod", "KEY")
	must(t, err)
	if cur.Version != 2 || cv.Version != 2 || string(cv.Ciphertext) != "c2" || cur.Owner != "team2" || !cv.CreatedAt.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("CurrentSecret: got %+v %+v; want version 2 = c2", cur, cv)
	}
	_, _, err = s.CurrentSecret(ctx, "p", "prod", "NOPE")
	wantCode(t, err, tokenward.ENOTFOUND)
	_, err = s.Secret(ctx, "p", "dev", "KEY")
	wantCode(t, err, tokenward.ENOTFOUND)

	list, err := s.Secrets(ctx, "p", "prod")
	must(t, err)
	if len(list) != 2 || list[0].Name != "A" || list[1].Name != "KEY" {
		t.Fatalf("got %d secrets; want A, KEY", len(list))
	}
	if list, err := s.Secrets(ctx, "p", "dev"); err != nil || len(list) != 0 {
		t.Fatalf("got %v, %v; want no secrets in dev", list, err)
	}
	_, err = s.Secrets(ctx, "p", "nope")
	wantCode(t, err, tokenward.ENOTFOUND)
	_, err = s.Secrets(ctx, "nope", "prod")
	wantCode(t, err, tokenward.ENOTFOUND)

	secrets, versions, err := s.EnvSecrets(ctx, "p", "prod")
	must(t, err)
	if len(secrets) != 2 || string(versions[1].Ciphertext) != "c2" || versions[1].Version != 2 || string(versions[0].Ciphertext) != "a1" {
		t.Fatalf("EnvSecrets: got %d secrets; want A@1=a1, KEY@2=c2", len(secrets))
	}
	vs, err := s.SecretVersions(ctx, "p", "prod", "KEY")
	must(t, err)
	if len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || vs[0].Ciphertext != nil {
		t.Fatalf("SecretVersions: got %+v; want versions 1, 2 without ciphertext", vs)
	}
	_, err = s.SecretVersions(ctx, "p", "prod", "NOPE")
	wantCode(t, err, tokenward.ENOTFOUND)
}

func testSecretConflicts(t *testing.T, s tokenward.Store) {
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	for _, tc := range []struct {
		name string
		meta *tokenward.Secret
		prev int
		v    *tokenward.SecretVersion
		code string
	}{
		{"no project", &tokenward.Secret{Project: "q", Env: "prod", Name: "KEY"}, 0, version(1, "x"), tokenward.ENOTFOUND},
		{"no env", &tokenward.Secret{Project: "p", Env: "dev", Name: "KEY"}, 0, version(1, "x"), tokenward.ENOTFOUND},
		{"create", meta, 0, version(1, "c1"), ""},
		{"create again", meta, 0, version(1, "c1b"), tokenward.ECONFLICT},
		{"stale writer", meta, 2, version(3, "c3"), tokenward.ECONFLICT},
		{"expected missing", &tokenward.Secret{Project: "p", Env: "prod", Name: "OTHER"}, 1, version(2, "x"), tokenward.ECONFLICT},
		{"next", meta, 1, version(2, "c2"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, s.PutSecret(ctx, tc.meta, tc.prev, tc.v), tc.code)
		})
	}
	v, err := s.SecretVersion(ctx, "p", "prod", "KEY", 1)
	must(t, err)
	if string(v.Ciphertext) != "c1" {
		t.Fatalf("a refused write changed version 1 to %q", v.Ciphertext)
	}
}

// testConcurrentWriters races writers on one secret, on its creation and on
// each next version: each version number is won by exactly one writer, and
// the losers get ECONFLICT (not a backend error), whether the writers share
// a process or a database.
func testConcurrentWriters(t *testing.T, s tokenward.Store) {
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	for prev := range 3 {
		raceWriters(t, s, meta, prev)
	}
	v, err := s.SecretVersions(ctx, "p", "prod", "KEY")
	must(t, err)
	if len(v) != 3 {
		t.Fatalf("got %d versions; want 3, one per race", len(v))
	}
}

// raceWriters races 8 writers of version prev+1 and wants one winner.
func raceWriters(t *testing.T, s tokenward.Store, meta *tokenward.Secret, prev int) {
	t.Helper()
	const writers = 8
	var wg sync.WaitGroup
	wins := make(chan int, writers)
	start := make(chan struct{}) // all at once, the likelier to overlap
	for i := range writers {
		wg.Go(func() {
			<-start
			if err := s.PutSecret(ctx, meta, prev, version(prev+1, fmt.Sprint("w", i))); err == nil {
				wins <- i
			} else if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
				t.Errorf("writer %d of version %d: got %v; want conflict or success", i, prev+1, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("got %d winners for version %d; want 1", n, prev+1)
	}
}

func testTokens(t *testing.T, s tokenward.Store) {
	hash := tokenward.HashToken("twa_one")
	tok := &tokenward.Token{
		ID: "tok_1", Name: "deploy-bot", Kind: tokenward.TokenService, Owner: "team",
		Grants:    tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")},
		CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour),
		CI: map[string]string{"repository": "acme/payments"},
	}
	must(t, s.CreateToken(ctx, tok, hash))
	dup := *tok
	dup.ID = "tok_2"
	wantCode(t, s.CreateToken(ctx, &dup, tokenward.HashToken("twa_two")), tokenward.ECONFLICT)

	got, err := s.TokenByHash(ctx, hash)
	must(t, err)
	if got.ID != "tok_1" || got.Name != "deploy-bot" || got.Kind != tokenward.TokenService || got.Grants[0].String() != "read:payments/prod/*" ||
		!got.ExpiresAt.Equal(tok.ExpiresAt) || !got.RevokedAt.IsZero() || got.CI["repository"] != "acme/payments" {
		t.Fatalf("got %+v; want the token as created", got)
	}
	_, err = s.TokenByHash(ctx, tokenward.HashToken("nope"))
	wantCode(t, err, tokenward.ENOTFOUND)
	if got, err := s.TokenByName(ctx, "deploy-bot"); err != nil || got.ID != "tok_1" {
		t.Fatalf("TokenByName: got %v, %v; want tok_1", got, err)
	}

	must(t, s.RevokeToken(ctx, "tok_1", base.Add(time.Hour)))
	must(t, s.RevokeToken(ctx, "tok_1", base.Add(2*time.Hour)))
	got, err = s.Token(ctx, "tok_1")
	must(t, err)
	if !got.RevokedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("got revoked at %v; want the first revocation %v", got.RevokedAt, base.Add(time.Hour))
	}
	wantCode(t, s.RevokeToken(ctx, "tok_nope", base), tokenward.ENOTFOUND)
	_, err = s.TokenByName(ctx, "deploy-bot")
	wantCode(t, err, tokenward.ENOTFOUND)
	// A revoked token's name is free again.
	must(t, s.CreateToken(ctx, &dup, tokenward.HashToken("twa_two")))
	// A hash is unique even across names.
	other := dup
	other.ID, other.Name = "tok_3", "other"
	if err := s.CreateToken(ctx, &other, tokenward.HashToken("twa_two")); err == nil {
		t.Fatal("two tokens with one hash were stored")
	}
	all, err := s.Tokens(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != "tok_1" || all[1].ID != "tok_2" {
		t.Fatalf("got %d tokens; want tok_1, tok_2", len(all))
	}
}

func testTouchTokens(t *testing.T, s tokenward.Store) {
	for _, id := range []string{"tok_a", "tok_b"} {
		must(t, s.CreateToken(ctx, &tokenward.Token{ID: id, Name: id, Kind: tokenward.TokenAdmin, CreatedAt: base}, tokenward.HashToken(id)))
	}
	must(t, s.TouchTokens(ctx, []tokenward.TokenUse{
		{ID: "tok_a", At: base.Add(2 * time.Minute), IP: "10.0.0.2"},
		{ID: "tok_b", At: base.Add(time.Minute), IP: "10.0.0.9"},
	}))
	// An older use recorded late never moves last-used back.
	must(t, s.TouchTokens(ctx, []tokenward.TokenUse{{ID: "tok_a", At: base.Add(time.Minute), IP: "10.0.0.1"}}))
	a, _ := s.Token(ctx, "tok_a")
	b, _ := s.Token(ctx, "tok_b")
	if !a.LastUsedAt.Equal(base.Add(2*time.Minute)) || !b.LastUsedAt.Equal(base.Add(time.Minute)) || b.LastUsedIP != "10.0.0.9" {
		t.Fatalf("got a=%v b=%v %s; want a=+2m b=+1m 10.0.0.9", a.LastUsedAt, b.LastUsedAt, b.LastUsedIP)
	}
	if !bytes.Equal([]byte(a.ID), []byte("tok_a")) {
		t.Fatal("wrong token")
	}
}
