package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// LeasingStore is a Store that keeps dynamic sources and leases.
type LeasingStore interface {
	tokenward.Store
	tokenward.LeaseStore
}

// RunLeases runs the lease store conformance test: sources written,
// replaced (their kind and config not while leased), listed and deleted
// (not while leased), never at a stored
// secret's path nor a secret at theirs (also when the two race); leases created under
// their caps (also by many writers at once), updated only from the state
// the caller saw, filtered, found by the sweep when due (the least tried first), and pruned;
// none created while a retirement holds its scope, nor once it is archived.
func RunLeases(t *testing.T, newStore func(t *testing.T) LeasingStore) {
	runEach(t, newStore,
		named[LeasingStore]{"Sources", testDynamicSources},
		named[LeasingStore]{"Leases", testLeases},
		named[LeasingStore]{"DueLeases", testDueLeases},
		named[LeasingStore]{"DueLeasesFair", testDueLeasesFair},
		named[LeasingStore]{"SourceChangeWhileLeased", testSourceChangeWhileLeased},
		named[LeasingStore]{"ConcurrentCaps", testLeaseCapsConcurrent},
		named[LeasingStore]{"SharedPath", testSourceSecretSharedPath},
		named[LeasingStore]{"HoldScope", testHoldScope},
		named[LeasingStore]{"UnstorableText", testLeaseUnstorableText})
}

// named is one test of a suite.

func dynSource(name string) *tokenward.DynamicSource {
	return &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: name, Kind: "postgres",
		Config: map[string]string{"admin_secret": "acme/prod/PG_ADMIN_URL", "group": "app"}, // #nosec G101 -- a secret path, not a credential
		TTL:    15 * time.Minute, MaxTTL: 2 * time.Hour, MaxLeases: 7, CreatedBy: "tok_admin", CreatedAt: base, UpdatedAt: base}
}

func newLease(id, source, token string, state tokenward.LeaseState, created time.Time) *tokenward.Lease {
	return &tokenward.Lease{ID: id, Project: "acme", Env: "prod", Name: source, Kind: "postgres", Role: "tw_" + id,
		TokenID: token, Job: "acme/app#12", State: state, CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
		MaxExpiresAt: created.Add(2 * time.Hour)}
}

func testDynamicSources(t *testing.T, s LeasingStore) {
	_, err := s.DynamicSource(ctx, "acme", "prod", "db")
	wantCode(t, err, tokenward.ENOTFOUND)
	src := dynSource("db")
	must(t, s.PutDynamicSource(ctx, src))
	must(t, s.PutDynamicSource(ctx, dynSource("cache")))
	got, err := s.DynamicSource(ctx, "acme", "prod", "db")
	must(t, err)
	if !reflect.DeepEqual(got, src) {
		t.Fatalf("got %+v; want %+v", got, src)
	}
	// A replacement keeps who made it and when.
	repl := dynSource("db")
	repl.TTL, repl.Config, repl.CreatedBy, repl.CreatedAt, repl.UpdatedAt = time.Minute, map[string]string{}, "tok_other", base.Add(time.Hour), base.Add(time.Hour)
	must(t, s.PutDynamicSource(ctx, repl))
	got, err = s.DynamicSource(ctx, "acme", "prod", "db")
	must(t, err)
	if got.TTL != time.Minute || len(got.Config) != 0 || got.CreatedBy != "tok_admin" || !got.CreatedAt.Equal(base) || !got.UpdatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("replaced: got %+v; want the new settings with the first creator and creation time", got)
	}
	all, err := s.DynamicSources(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Name != "cache" || all[1].Name != "db" {
		t.Fatalf("list: got %d sources; want cache, db", len(all))
	}
	// Not while a lease is live; then yes; then not found.
	l := newLease("lease_1", "db", "tok_1", tokenward.LeaseActive, base)
	must(t, s.CreateLease(ctx, l, tokenward.LeaseLimits{}))
	wantCode(t, s.DeleteDynamicSource(ctx, "acme", "prod", "db"), tokenward.ECONFLICT)
	l.State, l.RevokedAt = tokenward.LeaseRevoked, base.Add(time.Minute)
	must(t, s.UpdateLease(ctx, l, tokenward.LeaseActive))
	must(t, s.DeleteDynamicSource(ctx, "acme", "prod", "db"))
	wantCode(t, s.DeleteDynamicSource(ctx, "acme", "prod", "db"), tokenward.ENOTFOUND)
	wantCode(t, s.CreateLease(ctx, newLease("lease_2", "db", "tok_1", tokenward.LeaseCreating, base), tokenward.LeaseLimits{}), tokenward.ENOTFOUND)
}

func testLeases(t *testing.T, s LeasingStore) {
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	must(t, s.PutDynamicSource(ctx, dynSource("dbx")))
	limits := tokenward.LeaseLimits{PerSource: 3, PerToken: 2}
	l1 := newLease("lease_1", "db", "tok_a", tokenward.LeaseCreating, base)
	must(t, s.CreateLease(ctx, l1, limits))
	got, err := s.Lease(ctx, "lease_1")
	must(t, err)
	if !reflect.DeepEqual(got, l1) {
		t.Fatalf("got %+v; want %+v", got, l1)
	}
	wantCode(t, s.CreateLease(ctx, l1, limits), tokenward.ECONFLICT)
	dupRole := newLease("lease_9", "db", "tok_c", tokenward.LeaseCreating, base)
	dupRole.Role = l1.Role
	wantCode(t, s.CreateLease(ctx, dupRole, limits), tokenward.ECONFLICT)
	must(t, s.CreateLease(ctx, newLease("lease_2", "db", "tok_a", tokenward.LeaseActive, base.Add(time.Second)), limits))
	// tok_a is at its cap of 2, on any source.
	wantCode(t, s.CreateLease(ctx, newLease("lease_3", "dbx", "tok_a", tokenward.LeaseCreating, base), limits), tokenward.ERATELIMITED)
	must(t, s.CreateLease(ctx, newLease("lease_3", "db", "tok_b", tokenward.LeaseActive, base.Add(2*time.Second)), limits))
	// db is at its cap of 3.
	wantCode(t, s.CreateLease(ctx, newLease("lease_4", "db", "tok_c", tokenward.LeaseCreating, base), limits), tokenward.ERATELIMITED)

	// Updates only from the state the caller saw.
	l1.State, l1.ExpiresAt = tokenward.LeaseActive, base.Add(30*time.Minute)
	wantCode(t, s.UpdateLease(ctx, l1, tokenward.LeaseActive), tokenward.ECONFLICT)
	must(t, s.UpdateLease(ctx, l1, tokenward.LeaseCreating))
	wantCode(t, s.UpdateLease(ctx, &tokenward.Lease{ID: "lease_none", State: tokenward.LeaseRevoked}, tokenward.LeaseActive), tokenward.ENOTFOUND)
	l1.State, l1.Reason, l1.Attempts, l1.NextAttemptAt, l1.Error = tokenward.LeaseRevoking, "requested by tok_admin", 2, base.Add(time.Minute), "connect: refused"
	must(t, s.UpdateLease(ctx, l1, tokenward.LeaseActive))
	got, err = s.Lease(ctx, "lease_1")
	must(t, err)
	if !reflect.DeepEqual(got, l1) {
		t.Fatalf("after updates: got %+v; want %+v", got, l1)
	}
	l1.State, l1.RevokedAt, l1.Attempts, l1.NextAttemptAt, l1.Error = tokenward.LeaseRevoked, base.Add(2*time.Minute), 3, time.Time{}, ""
	must(t, s.UpdateLease(ctx, l1, tokenward.LeaseRevoking))
	// A revoked lease no longer counts against the caps.
	must(t, s.CreateLease(ctx, newLease("lease_4", "dbx", "tok_a", tokenward.LeaseCreating, base.Add(3*time.Second)), limits))

	ids := func(f tokenward.LeaseFilter) string {
		t.Helper()
		ls, err := s.Leases(ctx, f)
		must(t, err)
		out := ""
		for _, l := range ls {
			out += l.ID + " "
		}
		return out
	}
	for _, tt := range []struct {
		f    tokenward.LeaseFilter
		want string
	}{
		{tokenward.LeaseFilter{}, "lease_1 lease_2 lease_3 lease_4 "},
		{tokenward.LeaseFilter{Live: true}, "lease_2 lease_3 lease_4 "},
		{tokenward.LeaseFilter{Prefix: "acme/prod/db"}, "lease_1 lease_2 lease_3 "}, // whole segments: not dbx
		{tokenward.LeaseFilter{Prefix: "acme/prod/dbx"}, "lease_4 "},
		{tokenward.LeaseFilter{Prefix: "acme/prod"}, "lease_1 lease_2 lease_3 lease_4 "},
		{tokenward.LeaseFilter{Prefix: "acme/prod/"}, "lease_1 lease_2 lease_3 lease_4 "},
		{tokenward.LeaseFilter{Prefix: "acme/pro"}, ""},
		{tokenward.LeaseFilter{Prefix: "acme/prod/d"}, ""},
		{tokenward.LeaseFilter{Prefix: "acme/prod/d_"}, ""},
		{tokenward.LeaseFilter{Prefix: "acme/", TokenID: "tok_a", Live: true}, "lease_2 lease_4 "},
		{tokenward.LeaseFilter{TokenID: "tok_b"}, "lease_3 "},
	} {
		if got := ids(tt.f); got != tt.want {
			t.Errorf("Leases(%+v): got %q; want %q", tt.f, got, tt.want)
		}
	}

	n, err := s.PruneLeases(ctx, base.Add(2*time.Minute))
	must(t, err)
	if n != 0 {
		t.Fatalf("prune before the revocation: got %d; want 0", n)
	}
	n, err = s.PruneLeases(ctx, base.Add(3*time.Minute))
	must(t, err)
	if n != 1 || ids(tokenward.LeaseFilter{}) != "lease_2 lease_3 lease_4 " {
		t.Fatalf("prune: got %d; want the one revoked lease gone", n)
	}
}

func testDueLeases(t *testing.T, s LeasingStore) {
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	for _, tok := range []struct {
		id              string
		expires, revoke time.Time
	}{
		{"tok_ok", base.Add(24 * time.Hour), time.Time{}},
		{"tok_revoked", time.Time{}, base.Add(time.Minute)},
		{"tok_expired", base.Add(5 * time.Minute), time.Time{}},
	} {
		must(t, s.CreateToken(ctx, &tokenward.Token{ID: tok.id, Name: tok.id, Kind: tokenward.TokenJIT, Grants: tokenward.Grants{tokenward.MustParseGrant("read:acme/prod/db")},
			CreatedAt: base, ExpiresAt: tok.expires}, tokenward.HashToken(tok.id)))
		if !tok.revoke.IsZero() {
			must(t, s.RevokeToken(ctx, tok.id, tok.revoke))
		}
	}
	now := base.Add(10 * time.Minute)
	add := func(id, token string, st tokenward.LeaseState, created time.Time, edit func(*tokenward.Lease)) {
		l := newLease(id, "db", token, st, created)
		if edit != nil {
			edit(l)
		}
		must(t, s.CreateLease(ctx, l, tokenward.LeaseLimits{}))
	}
	add("a_fresh", "tok_ok", tokenward.LeaseActive, base, nil)
	add("b_expired", "tok_ok", tokenward.LeaseActive, base.Add(-time.Hour), nil)
	add("c_token_revoked", "tok_revoked", tokenward.LeaseActive, base.Add(time.Second), nil)
	add("d_token_expired", "tok_expired", tokenward.LeaseActive, base.Add(2*time.Second), nil)
	add("e_creating_stale", "tok_ok", tokenward.LeaseCreating, base.Add(3*time.Second), nil)
	add("f_creating_new", "tok_ok", tokenward.LeaseCreating, now.Add(-time.Second), nil)
	add("g_revoking_due", "tok_ok", tokenward.LeaseRevoking, base.Add(4*time.Second), func(l *tokenward.Lease) { l.NextAttemptAt = now })
	add("h_revoking_later", "tok_ok", tokenward.LeaseRevoking, base.Add(5*time.Second), func(l *tokenward.Lease) { l.NextAttemptAt = now.Add(time.Second) })
	add("i_revoked", "tok_revoked", tokenward.LeaseRevoked, base.Add(-2*time.Hour), func(l *tokenward.Lease) { l.RevokedAt = base })
	due, err := s.DueLeases(ctx, now, now.Add(-time.Minute), 100)
	must(t, err)
	got := ""
	for _, l := range due {
		got += l.ID + " "
	}
	if want := "b_expired c_token_revoked d_token_expired e_creating_stale g_revoking_due "; got != want {
		t.Fatalf("due: got %q; want %q (oldest first)", got, want)
	}
	if due, err := s.DueLeases(ctx, now, now.Add(-time.Minute), 2); err != nil || len(due) != 2 || due[0].ID != "b_expired" {
		t.Fatalf("due, limit 2: got %d leases, %v; want the 2 oldest", len(due), err)
	}
}

// testLeaseCapsConcurrent: many writers at once, one source, one cap; the
// store must let exactly the cap through.
func testLeaseCapsConcurrent(t *testing.T, s LeasingStore) {
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	const writers, limit = 24, 5
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			err := s.CreateLease(ctx, newLease(fmt.Sprintf("lease_%02d", i), "db", fmt.Sprintf("tok_%d", i%3), tokenward.LeaseCreating, base),
				tokenward.LeaseLimits{PerSource: limit, PerToken: limit})
			switch tokenward.ErrorCode(err) {
			case "":
				ok.Add(1)
			case tokenward.ERATELIMITED:
				refused.Add(1)
			default:
				t.Errorf("lease %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit || refused.Load() != writers-limit {
		t.Fatalf("got %d created, %d refused; want %d and %d", ok.Load(), refused.Load(), limit, writers-limit)
	}
}

// testSourceSecretSharedPath: a dynamic source and a stored secret never
// share a path, whichever comes first, and when the two writes race
// exactly one wins.
func testSourceSecretSharedPath(t *testing.T, s LeasingStore) {
	newProject(t, s, "acme", "prod")
	secretAt := func(name string) *tokenward.Secret {
		return &tokenward.Secret{Project: "acme", Env: "prod", Name: name}
	}
	must(t, s.PutSecret(ctx, secretAt("DB_URL"), 0, version(1, "c1")))
	wantCode(t, s.PutDynamicSource(ctx, dynSource("DB_URL")), tokenward.ECONFLICT)
	_, err := s.DynamicSource(ctx, "acme", "prod", "DB_URL")
	wantCode(t, err, tokenward.ENOTFOUND)

	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	wantCode(t, s.PutSecret(ctx, secretAt("db"), 0, version(1, "c1")), tokenward.ECONFLICT)
	_, err = s.Secret(ctx, "acme", "prod", "db")
	wantCode(t, err, tokenward.ENOTFOUND)
	must(t, s.PutDynamicSource(ctx, dynSource("db"))) // a source's replacement is no clash
	must(t, s.PutSecret(ctx, secretAt("DB_URL"), 1, version(2, "c2")))

	// Racing pairs: each path ends up a secret or a source, never both,
	// and the loser is told ECONFLICT.
	// One pair at a time, both writes released at once, so that the two
	// transactions overlap as often as the store lets them.
	const pairs = 40
	errs := make([][2]error, pairs)
	for i := range pairs {
		name := fmt.Sprint("race", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; errs[i][0] = s.PutSecret(ctx, secretAt(name), 0, version(1, "c")) })
		wg.Go(func() { <-start; errs[i][1] = s.PutDynamicSource(ctx, dynSource(name)) })
		close(start)
		wg.Wait()
	}
	for i := range pairs {
		name := fmt.Sprint("race", i)
		_, serr := s.Secret(ctx, "acme", "prod", name)
		_, derr := s.DynamicSource(ctx, "acme", "prod", name)
		secret, source := serr == nil, derr == nil
		if secret == source {
			t.Errorf("%s: secret stored %v, source stored %v; want exactly one", name, secret, source)
			continue
		}
		loser := errs[i][1]
		if source {
			loser = errs[i][0]
		}
		wantCode(t, loser, tokenward.ECONFLICT)
	}

	// An archived environment is not restored over a source made at one
	// of its secrets' paths while it was archived.
	ar, ok := s.(interface {
		ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error)
		RestoreEnv(ctx context.Context, project, env string) (int, error)
	})
	if !ok {
		return
	}
	_, err = ar.ArchiveEnv(ctx, &monitor.Archive{Project: "acme", Env: "prod", ArchivedAt: base, PurgeAt: base.Add(time.Hour)})
	must(t, err)
	must(t, s.PutDynamicSource(ctx, dynSource("DB_URL")))
	_, err = ar.RestoreEnv(ctx, "acme", "prod")
	wantCode(t, err, tokenward.ECONFLICT)
	_, err = s.Secret(ctx, "acme", "prod", "DB_URL")
	wantCode(t, err, tokenward.ENOTFOUND)
	must(t, s.DeleteDynamicSource(ctx, "acme", "prod", "DB_URL"))
	_, err = ar.RestoreEnv(ctx, "acme", "prod")
	must(t, err)
	_, err = s.Secret(ctx, "acme", "prod", "DB_URL")
	must(t, err)
}

// testHoldScope: while a scope is held, its leases wait (an environment's
// hold stops that environment, a project's every one), others go on; a
// lease that waited through the archive is refused, as is any after it.
func testHoldScope(t *testing.T, s LeasingStore) {
	ar, ok := s.(interface {
		ArchiveEnv(ctx context.Context, a *monitor.Archive) (int, error)
	})
	if !ok {
		t.Skip("the store keeps no archives")
	}
	newProject(t, s, "acme", "prod", "staging")
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	staging := dynSource("db")
	staging.Env = "staging"
	must(t, s.PutDynamicSource(ctx, staging))
	n := 0
	lease := func(env string) *tokenward.Lease {
		n++
		l := newLease(fmt.Sprintf("lease_%d", n), "db", fmt.Sprintf("tok_%d", n), tokenward.LeaseCreating, base)
		l.Env = env
		return l
	}
	// blocked reports whether a lease in env waits (for 300 ms).
	blocked := func(env string) bool {
		t.Helper()
		bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := s.CreateLease(bctx, lease(env), tokenward.LeaseLimits{})
		if err != nil && bctx.Err() == nil {
			t.Fatalf("CreateLease in acme/%s: %v", env, err)
		}
		return err != nil
	}

	release, err := s.HoldScope(ctx, "acme", "prod")
	must(t, err)
	if !blocked("prod") || blocked("staging") {
		t.Fatal("with acme/prod held: want a lease in prod to wait, one in staging not")
	}
	// A lease waiting through the archive is refused once the hold ends.
	waited := make(chan error, 1)
	go func() { waited <- s.CreateLease(ctx, lease("prod"), tokenward.LeaseLimits{}) }()
	_, err = ar.ArchiveEnv(ctx, &monitor.Archive{Project: "acme", Env: "prod", ArchivedAt: base, PurgeAt: base.Add(time.Hour)})
	must(t, err)
	select {
	case err := <-waited:
		t.Fatalf("CreateLease returned %v while its scope was held", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	release() // once is enough; twice is harmless
	wantCode(t, <-waited, tokenward.ECONFLICT)
	wantCode(t, s.CreateLease(ctx, lease("prod"), tokenward.LeaseLimits{}), tokenward.ECONFLICT)

	// A project's hold stops every environment of it.
	release, err = s.HoldScope(ctx, "acme", "")
	must(t, err)
	if !blocked("staging") {
		t.Fatal("with the project acme held: want a lease in acme/staging to wait")
	}
	release()
	must(t, s.CreateLease(ctx, lease("staging"), tokenward.LeaseLimits{}))
	// A hold that gives up waiting lets the leases behind it go on.
	release, err = s.HoldScope(ctx, "acme", "staging")
	must(t, err)
	hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.HoldScope(hctx, "acme", "staging")
	cancel()
	if err == nil {
		t.Fatal("a second hold of acme/staging was granted while the first was held")
	}
	release()
	must(t, s.CreateLease(ctx, lease("staging"), tokenward.LeaseLimits{}))
}

// testLeaseUnstorableText looks leases up by a client's text that no
// lease holds and PostgreSQL's text cannot hold (a NUL byte, invalid
// UTF-8: GET /v1/leases/%00, ?prefix=%FF): not found, or an empty list,
// as on every store — never an internal error.
func testLeaseUnstorableText(t *testing.T, s LeasingStore) {
	for _, bad := range []string{"lease\x00", "lease\xff"} {
		_, err := s.Lease(ctx, bad)
		wantCode(t, err, tokenward.ENOTFOUND)
		for _, f := range []tokenward.LeaseFilter{{Prefix: bad}, {TokenID: bad}} {
			ls, err := s.Leases(ctx, f)
			if err != nil || len(ls) != 0 {
				t.Fatalf("leases %+v: got %d, %v; want none, nil", f, len(ls), err)
			}
		}
	}
}
