package core_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// replacedDBRouteStore is the database route store of f.db in which
// afterRead runs once, just after the first read of a route (another
// request or server acting between DeleteDBRoute's check of the caller's
// right and its delete), and afterCreate once, just after the first
// route is stored (acting between CreateDBRoute's insert and its check
// of the name).
type replacedDBRouteStore struct {
	*sqlite.DB
	afterRead, afterCreate func()
}

func (s *replacedDBRouteStore) DBRoute(ctx context.Context, name string) (*tokenward.DBRoute, error) {
	r, err := s.DB.DBRoute(ctx, name)
	if f := s.afterRead; f != nil {
		s.afterRead = nil
		f()
	}
	return r, err
}

func (s *replacedDBRouteStore) CreateDBRoute(ctx context.Context, r *tokenward.DBRoute) error {
	err := s.DB.CreateDBRoute(ctx, r)
	if f := s.afterCreate; f != nil {
		s.afterCreate = nil
		f()
	}
	return err
}

// TestDBRouteDeleteReplacedMeanwhile: the database route a caller may
// delete is replaced, between the check and the delete, by one under the
// same name signing in with a secret the caller does not administer. The
// delete must be refused (ECONFLICT), and the new route left stored.
func TestDBRouteDeleteReplacedMeanwhile(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	store := &replacedDBRouteStore{DB: f.db}
	f.core.DBGateway = &core.DBGateway{Store: store}
	mine, _, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "prod-admin", Grants: mustGrants("admin:payments/prod/*")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.CreateDBRoute(ctx, mine, dbRoute("pg")); err != nil {
		t.Fatal(err)
	}
	other := dbRoute("pg")
	other.Env, other.Secret = "dev", "ROOT_DATABASE_URL"
	store.afterRead = func() {
		if _, err := f.core.DeleteDBRoute(ctx, f.admin, "pg"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.core.CreateDBRoute(ctx, f.admin, other); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.core.DeleteDBRoute(ctx, mine, "pg")
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("delete of a route replaced meanwhile: got %v; want ECONFLICT", err)
	}
	r, err := f.db.DBRoute(ctx, "pg")
	if err != nil || r.SecretPath() != other.SecretPath() {
		t.Errorf("the replacing route: got %+v, %v; want it still stored", r, err)
	}
}

// TestDBRouteCreateUndoneOnlyItself: CreateDBRoute takes its route back
// when an HTTP route of the name appeared meanwhile; if its route was
// itself replaced by then (deleted and made again by another server),
// the replacing route must be left stored, not deleted by name.
func TestDBRouteCreateUndoneOnlyItself(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	store := &replacedDBRouteStore{DB: f.db}
	f.core.DBGateway = &core.DBGateway{Store: store}
	other := dbRoute("shared")
	other.Env, other.Secret, other.CreatedAt, other.CreatedBy = "dev", "ROOT_DATABASE_URL", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "tok_other"
	store.afterCreate = func() {
		if err := f.db.CreateGatewayRoute(ctx, httpRoute("shared")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.core.DeleteDBRoute(ctx, f.admin, "shared"); err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateDBRoute(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.core.CreateDBRoute(ctx, f.admin, dbRoute("shared"))
	if tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("CreateDBRoute while an HTTP route of the name appears: got %v; want ECONFLICT", err)
	}
	if r, err := f.db.DBRoute(ctx, "shared"); err != nil || !reflect.DeepEqual(r, other) {
		t.Errorf("the route that replaced the one taken back: got %+v, %v; want %+v still stored", r, err, other)
	}
}
