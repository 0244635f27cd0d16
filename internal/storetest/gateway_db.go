package storetest

import (
	"reflect"
	"testing"

	"github.com/tokenward/tokenward"
)

// DBRouteStore is what a backend provides for database gateway routes:
// the suite needs no other part of a tokenward.Store.
type DBRouteStore interface {
	tokenward.DBRouteStore
	Close() error
}

// RunDBRoutes runs the database gateway routes' part of the suite.
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

	must(t, s.DeleteDBRoute(ctx, "pgprod"))
	_, err = s.DBRoute(ctx, "pgprod")
	wantCode(t, err, tokenward.ENOTFOUND)
	wantCode(t, s.DeleteDBRoute(ctx, "pgprod"), tokenward.ENOTFOUND)
	// The name is free again.
	must(t, s.CreateDBRoute(ctx, r))
}
