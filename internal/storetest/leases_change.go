package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// testSourceChangeWhileLeased: a source's kind and config say where and
// how its leases' roles are revoked, so they do not change while a lease
// of it is live (revoking included): the roles would be revoked against
// another database, or by other SQL, and stay where they were made. Its
// TTLs and cap change freely; another source whose path starts with its
// path is not held by its leases.
func testSourceChangeWhileLeased(t *testing.T, s LeasingStore) {
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	must(t, s.PutDynamicSource(ctx, dynSource("dbx")))
	l := newLease("lease_1", "db", "tok_1", tokenward.LeaseActive, base)
	must(t, s.CreateLease(ctx, l, tokenward.LeaseLimits{}))
	changes := []struct {
		name string
		edit func(*tokenward.DynamicSource)
	}{
		{"admin secret", func(d *tokenward.DynamicSource) { d.Config["admin_secret"] = "acme/prod/OTHER_URL" }},
		{"revocation sql", func(d *tokenward.DynamicSource) { d.Config["revocation_sql"] = "DROP ROLE {{name}};" }},
		{"key removed", func(d *tokenward.DynamicSource) { delete(d.Config, "group") }},
		{"kind", func(d *tokenward.DynamicSource) { d.Kind = "mysql" }},
	}
	for _, c := range changes {
		repl := dynSource("db")
		c.edit(repl)
		repl.UpdatedAt = base.Add(time.Hour)
		err := s.PutDynamicSource(ctx, repl)
		if tokenward.ErrorCode(err) != tokenward.ECONFLICT || !strings.Contains(err.Error(), "tokenward lease revoke --prefix acme/prod/db") {
			t.Errorf("%s changed while leased: got %v; want a conflict naming `tokenward lease revoke --prefix acme/prod/db`", c.name, err)
		}
	}
	got, err := s.DynamicSource(ctx, "acme", "prod", "db")
	must(t, err)
	if want := dynSource("db"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after refused replacements: got %+v; want %+v", got, want)
	}
	// dbx has no lease of its own.
	x := dynSource("dbx")
	x.Config["admin_secret"] = "acme/prod/OTHER_URL"
	must(t, s.PutDynamicSource(ctx, x))
	// The same config with other TTLs and cap is no change of where
	// revocation runs.
	same := dynSource("db")
	same.TTL, same.MaxTTL, same.MaxLeases, same.UpdatedAt = time.Minute, time.Hour, 3, base.Add(time.Hour)
	must(t, s.PutDynamicSource(ctx, same))
	if got, err := s.DynamicSource(ctx, "acme", "prod", "db"); err != nil || got.TTL != time.Minute || got.MaxLeases != 3 {
		t.Fatalf("ttl change while leased: got %+v, %v; want the new ttl and cap", got, err)
	}
	changed := dynSource("db")
	changed.Config["admin_secret"] = "acme/prod/OTHER_URL"
	// A revocation being retried holds the source too: its role may exist.
	l.State, l.Reason, l.Attempts, l.NextAttemptAt = tokenward.LeaseRevoking, "expired", 1, base.Add(time.Minute)
	must(t, s.UpdateLease(ctx, l, tokenward.LeaseActive))
	wantCode(t, s.PutDynamicSource(ctx, changed), tokenward.ECONFLICT)
	l.State, l.RevokedAt = tokenward.LeaseRevoked, base.Add(2*time.Minute)
	must(t, s.UpdateLease(ctx, l, tokenward.LeaseRevoking))
	must(t, s.PutDynamicSource(ctx, changed))
	if got, err := s.DynamicSource(ctx, "acme", "prod", "db"); err != nil || got.Config["admin_secret"] != "acme/prod/OTHER_URL" {
		t.Fatalf("change once no lease is live: got %+v, %v; want the new admin secret", got, err)
	}
}

// testDueLeasesFair: the sweep's batch takes the leases tried least
// first, so revocations that keep failing (a database gone) cannot fill
// every batch ahead of a lease never tried, however old they are.
func testDueLeasesFair(t *testing.T, s LeasingStore) {
	must(t, s.PutDynamicSource(ctx, dynSource("db")))
	now := base.Add(time.Hour)
	for i := range 3 {
		l := newLease(fmt.Sprintf("a_stuck_%d", i), "db", "tok_1", tokenward.LeaseRevoking, base.Add(time.Duration(i)*time.Second))
		l.Reason, l.Attempts, l.NextAttemptAt, l.Error = "expired", 7, now.Add(-time.Minute), "drop role: objects depend on it"
		must(t, s.CreateLease(ctx, l, tokenward.LeaseLimits{}))
	}
	// Expired (at base+25m), never tried.
	must(t, s.CreateLease(ctx, newLease("b_fresh", "db", "tok_1", tokenward.LeaseActive, base.Add(10*time.Minute)), tokenward.LeaseLimits{}))
	once := newLease("c_once", "db", "tok_1", tokenward.LeaseRevoking, base.Add(11*time.Minute))
	once.Reason, once.Attempts, once.NextAttemptAt = "expired", 1, now
	must(t, s.CreateLease(ctx, once, tokenward.LeaseLimits{}))
	ids := func(limit int) string {
		t.Helper()
		due, err := s.DueLeases(ctx, now, now.Add(-time.Minute), limit)
		must(t, err)
		out := ""
		for _, l := range due {
			out += l.ID + " "
		}
		return out
	}
	if got, want := ids(2), "b_fresh c_once "; got != want {
		t.Errorf("due, limit 2: got %q; want %q (fewest attempts first)", got, want)
	}
	if got, want := ids(100), "b_fresh c_once a_stuck_0 a_stuck_1 a_stuck_2 "; got != want {
		t.Errorf("due: got %q; want %q (fewest attempts, then longest due, then oldest)", got, want)
	}
}
