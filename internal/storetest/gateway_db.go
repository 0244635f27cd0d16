package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// DBRouteStore is what a backend provides for database gateway routes:
// the suite needs no other part of a tokenward.Store.
type DBRouteStore interface {
	tokenward.DBRouteStore
	Close() error
}

// RunDBRoutes runs the database gateway routes' part of the suite: create,
// read back, list by name, conflicts, and delete (only of the route as it
// was read: a changed one is ECONFLICT and stays).
func RunDBRoutes(t *testing.T, newStore func(t *testing.T) DBRouteStore) {
	s := newStore(t)
	t.Cleanup(func() { s.Close() })

	list, err := s.DBRoutes(ctx)
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Fatalf("got %v routes in a new store; want an empty, non-nil list", list)
	}
	r := &tokenward.DBRoute{Name: "pgprod", Upstream: "db.internal:5432", Project: "acme", Env: "prod", Secret: "DATABASE_URL", CreatedAt: base, CreatedBy: "tok_creator"}
	must(t, s.CreateDBRoute(ctx, r))
	dup := *r
	dup.Upstream = "other:5432"
	wantCode(t, s.CreateDBRoute(ctx, &dup), tokenward.ECONFLICT)
	must(t, s.CreateDBRoute(ctx, &tokenward.DBRoute{Name: "a-first", Upstream: "[::1]:6432", Project: "p", Env: "e", Secret: "S", CreatedAt: base}))

	got, err := s.DBRoute(ctx, "pgprod")
	must(t, err)
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got %+v; want %+v", got, r)
	}
	_, err = s.DBRoute(ctx, "nope")
	wantCode(t, err, tokenward.ENOTFOUND)

	list, err = s.DBRoutes(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Name != "a-first" || list[1].Name != "pgprod" || list[0].Upstream != "[::1]:6432" {
		t.Fatalf("got %+v; want a-first, pgprod in order", list)
	}

	// A delete names the route it checked: one that differs from what is
	// stored (another request or server replaced it since it was read)
	// is refused and the stored one left, whichever field differs.
	for i, change := range []func(r *tokenward.DBRoute){
		func(r *tokenward.DBRoute) { r.Upstream = "evil.example:5432" },
		func(r *tokenward.DBRoute) { r.Project = "other" },
		func(r *tokenward.DBRoute) { r.Env = "dev" },
		func(r *tokenward.DBRoute) { r.Secret = "ROOT_DATABASE_URL" },
		func(r *tokenward.DBRoute) { r.CreatedAt = r.CreatedAt.Add(time.Nanosecond) },
		func(r *tokenward.DBRoute) { r.CreatedBy = "tok_other" },
	} {
		stale := *r
		change(&stale)
		if err := s.DeleteDBRoute(ctx, &stale); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
			t.Errorf("change %d: delete of a route other than the stored one: got %v; want ECONFLICT", i, err)
		}
	}
	if got, err := s.DBRoute(ctx, "pgprod"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after refused deletes: got %+v, %v; want %+v", got, err, r)
	}
	must(t, s.DeleteDBRoute(ctx, got)) // as read back
	_, err = s.DBRoute(ctx, "pgprod")
	wantCode(t, err, tokenward.ENOTFOUND)
	wantCode(t, s.DeleteDBRoute(ctx, got), tokenward.ENOTFOUND)
	must(t, s.DeleteDBRoute(ctx, &tokenward.DBRoute{Name: "a-first", Upstream: "[::1]:6432", Project: "p", Env: "e", Secret: "S", CreatedAt: base})) // as created
	_, err = s.DBRoute(ctx, "a-first")
	wantCode(t, err, tokenward.ENOTFOUND)
	// The name is free again.
	must(t, s.CreateDBRoute(ctx, r))
}
