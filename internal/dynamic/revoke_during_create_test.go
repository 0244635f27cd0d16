package dynamic_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// hookKind is the postgres kind with a hook run before each creation: it
// stands for a revoker acting while a lease is still 'creating'.
type hookKind struct {
	*dynamic.Postgres
	beforeCreate func(l *tokenward.Lease)
}

func (k hookKind) Create(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) (*dynamic.Credential, error) {
	if k.beforeCreate != nil {
		k.beforeCreate(l)
	}
	return k.Postgres.Create(ctx, src, l)
}

// TestRevocationDuringCreationLeavesNoRole: a token revoked (or a prefix
// revoked, or the sweep) while its lease is still being created finds no
// role yet and records the lease revoked; the maker then makes the role,
// finds its lease taken and must drop it rather than leave it behind.
func TestRevocationDuringCreationLeavesNoRole(t *testing.T) {
	c := pgtest.Shared(t)
	for name, revoke := range map[string]func(f *fixture, tok *tokenward.Token, l *tokenward.Lease) error{
		"token revoked": func(f *fixture, tok *tokenward.Token, _ *tokenward.Lease) error {
			_, err := f.engine.RevokeToken(context.Background(), tok.ID)
			return err
		},
		"sweep": func(f *fixture, _ *tokenward.Token, _ *tokenward.Lease) error {
			f.advance(f.engine.StaleAfter) // a server whose clock runs ahead, or a maker that stalled
			_, err := f.engine.Sweep(context.Background())
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, c)
			f.source(t, 15*time.Minute, time.Hour)
			tok := f.token(t, "job", 0)
			var role string
			f.engine.Kinds["postgres"] = hookKind{Postgres: f.pg, beforeCreate: func(l *tokenward.Lease) {
				role = l.Role
				if err := revoke(f, tok, l); err != nil {
					t.Error(err)
				}
			}}
			_, cred, err := f.engine.Lease(t.Context(), tok, "acme", "prod", "db")
			if err == nil || cred != nil {
				t.Fatalf("lease revoked while created: got %+v, %v; want an error and no credential", cred, err)
			}
			ls, _ := f.db.Leases(t.Context(), tokenward.LeaseFilter{})
			if len(ls) != 1 {
				t.Fatalf("got %d leases; want 1", len(ls))
			}
			if f.roleExists(t, role) {
				t.Fatalf("role %s of lease %s (%s, %q) survives its revocation", role, ls[0].ID, ls[0].State, ls[0].Reason)
			}
			// Nothing the sweep could still find either.
			f.advance(time.Hour)
			f.engine.Sweep(t.Context())
			if f.roleExists(t, role) {
				t.Fatalf("role %s survives the sweep", role)
			}
		})
	}
}
