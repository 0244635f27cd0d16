package dynamic_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// otherDatabase makes a second database on c, stores its URL as the
// secret acme/prod/PG_ADMIN_URL_2 and returns the URL. Roles left by the
// test (*roles) are dropped from both databases when it ends.
func (f *fixture) otherDatabase(t *testing.T, c *pgtest.Cluster, roles *[]string) string {
	t.Helper()
	other := c.NewDatabase(t)
	if _, err := f.core.PutSecret(t.Context(), f.admin, core.PutSecretInput{Project: "acme", Env: "prod", Name: "PG_ADMIN_URL_2", Value: []byte(other)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, db := range []string{other, f.adminURL} {
			conn, err := pgx.Connect(ctx, db)
			if err != nil {
				continue
			}
			for _, r := range *roles {
				conn.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{r}.Sanitize())
			}
			conn.Close(ctx)
		}
		conn, err := pgx.Connect(ctx, c.DSN)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		for _, r := range *roles {
			conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
	return other
}

// TestReplacingALeasedSourceStrandsNoRole: a live lease's role is revoked
// through its source's admin URL and revocation SQL. Pointing the source
// at another database while the lease lives would revoke it there: the
// role, which owns the job's table where it was made, would stay for good.
// The replacement is refused (409, saying how to revoke the leases first)
// until no lease of the source is live; its TTL changes meanwhile.
func TestReplacingALeasedSourceStrandsNoRole(t *testing.T) {
	c := pgtest.Shared(t)
	f := newFixture(t, c)
	var roles []string
	f.otherDatabase(t, c, &roles)
	f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	l, cred := f.lease(t, tok)
	roles = append(roles, l.Role)
	conn, err := connectAs(t, cred.Value)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "CREATE TABLE made_by_job (id int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())

	moved := func() *tokenward.DynamicSource {
		return &tokenward.DynamicSource{Project: "acme", Env: "prod", Name: "db", Kind: "postgres",
			Config: map[string]string{"admin_secret": "acme/prod/PG_ADMIN_URL_2", "group": f.group}, TTL: 15 * time.Minute, MaxTTL: time.Hour}
	}
	_, err = f.engine.PutSource(t.Context(), f.admin, moved(), false)
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT || !strings.Contains(err.Error(), "tokenward lease revoke --prefix acme/prod/db") {
		t.Errorf("moving a leased source to another database: got %v; want a conflict naming `tokenward lease revoke --prefix acme/prod/db`", err)
	}
	if err != nil && strings.Contains(err.Error(), f.adminURL) {
		t.Errorf("the refusal holds the admin URL: %v", err)
	}
	if src, err := f.db.DynamicSource(t.Context(), "acme", "prod", "db"); err != nil || src.Config["admin_secret"] != "acme/prod/PG_ADMIN_URL" {
		t.Errorf("source after the refusal: got %+v, %v; want it unchanged", src, err)
	}
	if r, err := f.engine.Revoke(t.Context(), tok, l.ID); err != nil || r.State != tokenward.LeaseRevoked || f.roleExists(t, l.Role) {
		t.Fatalf("revoke: got %+v, %v (role exists: %v); want revoked and the role gone, not stranded", r, err, f.roleExists(t, l.Role))
	}
	// No lease is live: it moves.
	if _, err := f.engine.PutSource(t.Context(), f.admin, moved(), false); err != nil {
		t.Fatalf("move with no live lease: %v", err)
	}
	l2, _ := f.lease(t, tok)
	roles = append(roles, l2.Role)
	ttl := moved()
	ttl.TTL = 5 * time.Minute
	if src, err := f.engine.PutSource(t.Context(), f.admin, ttl, false); err != nil || src.TTL != 5*time.Minute {
		t.Fatalf("ttl change while leased: got %+v, %v; want the new ttl", src, err)
	}
}

// replacingStore runs before just before the first CreateLease: the source is
// replaced between the engine's read of it and the lease's record.
type replacingStore struct {
	dynamic.Store
	before func()
}

func (s *replacingStore) CreateLease(ctx context.Context, l *tokenward.Lease, limits tokenward.LeaseLimits) error {
	if s.before != nil {
		s.before()
		s.before = nil
	}
	return s.Store.CreateLease(ctx, l, limits)
}

// TestLeaseMadeWhereItsSourcePoints: a source replaced (no lease live yet)
// after a reader's lease read it but before the lease was recorded: the
// credential is made where the source points now, where its revocation
// will run, not where it pointed.
func TestLeaseMadeWhereItsSourcePoints(t *testing.T) {
	c := pgtest.Shared(t)
	f := newFixture(t, c)
	var roles []string
	other := f.otherDatabase(t, c, &roles)
	src := f.source(t, 15*time.Minute, time.Hour)
	tok := f.token(t, "job", 0)
	f.engine.Store = &replacingStore{Store: f.db, before: func() {
		moved := *src
		moved.Config = map[string]string{"admin_secret": "acme/prod/PG_ADMIN_URL_2", "group": f.group}
		if err := f.db.PutDynamicSource(context.Background(), &moved); err != nil {
			t.Error(err)
		}
	}}
	l, cred := f.lease(t, tok)
	roles = append(roles, l.Role)
	got, err := url.Parse(cred.Value)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := url.Parse(other)
	if got.Path != want.Path {
		t.Errorf("credential for database %s; want %s, where the source points (and revokes)", got.Path, want.Path)
	}
}

// TestSweepReachesEveryDueLease: leases whose revocation keeps failing
// (their roles own a table in another database, so DROP ROLE fails) are
// more than one sweep's batch and older than a good expired lease; sweeps
// that come once the failed ones are due again must still revoke the good
// one, not retry the same oldest batch forever.
func TestSweepReachesEveryDueLease(t *testing.T) {
	c := pgtest.Shared(t)
	f := newFixture(t, c)
	var roles []string
	other := f.otherDatabase(t, c, &roles)
	f.source(t, 15*time.Minute, time.Hour)
	f.engine.SweepBatch, f.engine.SweepConcurrency = 2, 1
	tok := f.token(t, "job", 0)
	oconn, err := pgx.Connect(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer oconn.Close(context.Background())
	var stuck []*tokenward.Lease
	for i := range 3 {
		l, _ := f.lease(t, tok)
		roles = append(roles, l.Role)
		stuck = append(stuck, l)
		table := fmt.Sprintf("stuck_%d", i)
		for _, q := range []string{"CREATE TABLE " + table + " (id int)", "ALTER TABLE " + table + " OWNER TO " + pgx.Identifier{l.Role}.Sanitize()} {
			if _, err := oconn.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		f.advance(time.Second)
	}
	good, _ := f.lease(t, tok)
	roles = append(roles, good.Role)
	f.advance(15 * time.Minute)
	for range 4 {
		if _, err := f.engine.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.advance(f.engine.MaxBackoff) // a slow sweep: the failed ones are due again
	}
	got, err := f.db.Lease(t.Context(), good.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != tokenward.LeaseRevoked || f.roleExists(t, good.Role) {
		t.Errorf("good lease after 4 sweeps: %s, %d attempts (role exists: %v); want revoked", got.State, got.Attempts, f.roleExists(t, good.Role))
	}
	for _, l := range stuck {
		if got, err := f.db.Lease(t.Context(), l.ID); err != nil || got.Attempts == 0 {
			t.Errorf("stuck lease %s: got %+v, %v; want tried", l.ID, got, err)
		}
	}
}
