package core_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/seal"
)

// TestRevokeTokenCascade runs the cascading revocation on real SQLite.
func TestRevokeTokenCascade(t *testing.T) {
	f := mustFixture(t)
	testRevokeTokenCascade(t, f.core, f.db, f.admin)
}

// TestRevokeTokenCascadePostgres runs it on PostgreSQL.
func TestRevokeTokenCascadePostgres(t *testing.T) {
	db, key := postgres.NewDB(pgtest.Shared(t).NewDatabase(t)), seal.NewKey()
	if err := db.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret, err := core.Init(t.Context(), db, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(t.Context(), db, key)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := c.Authenticate(t.Context(), secret, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	testRevokeTokenCascade(t, c, db, admin)
}

// cascadeTree is the tree the cascade tests revoke in:
//
//	admin ─┬─ parent ─┬─ child ─── grandchild ─── successor (its rotation's)
//	       │          └─ gone (revoked) ─── orphan
//	       └─ sibling
//	binding:deploy ─── jit (a binding the parent made mints it)
//	loopA ⇄ loopB, selfmade ↺ (records written straight to the store)
type cascadeTree struct {
	ids     map[string]string // name -> id
	secrets map[string]string
}

func mustCascadeTree(t *testing.T, c *core.Core, store tokenward.Store, admin *tokenward.Token) *cascadeTree {
	t.Helper()
	ctx := t.Context()
	tr := &cascadeTree{ids: map[string]string{}, secrets: map[string]string{}}
	toks := map[string]*tokenward.Token{"admin": admin}
	mint := func(creator, name, grant string) {
		t.Helper()
		tok, secret, err := c.CreateToken(ctx, toks[creator], core.CreateTokenInput{Name: name, Grants: tokenward.Grants{tokenward.MustParseGrant(grant)}})
		if err != nil {
			t.Fatalf("mint %s: %v", name, err)
		}
		toks[name], tr.ids[name], tr.secrets[name] = tok, tok.ID, secret
	}
	mint("admin", "parent", "read:payments/*/*")
	mint("parent", "child", "read:payments/prod/*")
	mint("child", "grandchild", "read:payments/prod/STRIPE_KEY")
	mint("parent", "gone", "read:payments/dev/*")
	mint("gone", "orphan", "read:payments/dev/DB")
	mint("admin", "sibling", "read:payments/*/*")
	if _, err := c.RevokeToken(ctx, admin, tr.ids["gone"]); err != nil {
		t.Fatal(err)
	}
	// A rotation's successor: the old token mints it.
	succ, err := c.RotationTokens().Mint(ctx, tr.secrets["grandchild"])
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.TokenByHash(ctx, tokenward.HashToken(succ))
	if err != nil {
		t.Fatal(err)
	}
	tr.ids["successor"] = st.ID
	// Records the API does not make: a just-in-time token (created by a
	// binding, never by a token), a cycle, a token that made itself.
	put := func(name string, kind tokenward.TokenKind, createdBy func(id string) string) {
		t.Helper()
		id := tokenward.NewTokenID()
		tr.ids[name] = id
		secret, err := tokenward.NewTokenSecret(kind)
		if err != nil {
			t.Fatal(err)
		}
		rec := &tokenward.Token{ID: id, Name: name, Kind: kind, CreatedBy: createdBy(id),
			Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}
		if err := store.CreateToken(ctx, rec, tokenward.HashToken(secret)); err != nil {
			t.Fatal(err)
		}
	}
	put("jit", tokenward.TokenJIT, func(string) string { return "binding:deploy" })
	loopA, loopB := tokenward.NewTokenID(), tokenward.NewTokenID()
	for _, r := range []struct{ name, id, by string }{{"loopA", loopA, loopB}, {"loopB", loopB, loopA}} {
		secret, _ := tokenward.NewTokenSecret(tokenward.TokenService)
		rec := &tokenward.Token{ID: r.id, Name: r.name, Kind: tokenward.TokenService, CreatedBy: r.by,
			Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}, CreatedAt: time.Now().UTC()}
		if err := store.CreateToken(ctx, rec, tokenward.HashToken(secret)); err != nil {
			t.Fatal(err)
		}
		tr.ids[r.name] = r.id
	}
	put("selfmade", tokenward.TokenService, func(id string) string { return id })
	return tr
}

func testRevokeTokenCascade(t *testing.T, c *core.Core, store tokenward.Store, admin *tokenward.Token) {
	ctx := t.Context()
	tr := mustCascadeTree(t, c, store, admin)
	revokedNow := func(t *testing.T) map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for name, id := range tr.ids {
			tok, err := store.Token(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = !tok.RevokedAt.IsZero()
		}
		return out
	}
	names := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			for name, nid := range tr.ids {
				if nid == id {
					out = append(out, name)
				}
			}
		}
		return out
	}
	caller := func(name string) *tokenward.Token {
		t.Helper()
		tok, err := c.Authenticate(ctx, tr.secrets[name], "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// Not allowed to revoke the root: nothing is revoked, not even below.
	before := revokedNow(t)
	if _, _, err := c.RevokeTokenCascade(ctx, caller("child"), tr.ids["parent"]); tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
		t.Fatalf("child cascading from its parent: got %v; want forbidden", err)
	}
	// Over the limit: refused before anything is revoked.
	core.SetCascadeLimit(c, 3)
	if _, _, err := c.RevokeTokenCascade(ctx, admin, "parent"); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Fatalf("4 descendants over a limit of 3: got %v; want invalid", err)
	}
	if got := revokedNow(t); !maps.Equal(got, before) {
		t.Fatalf("refused cascades changed revocations: got %v; want %v", got, before)
	}
	core.SetCascadeLimit(c, 4)

	for _, tc := range []struct {
		name, caller, root string
		byName             bool     // name the root by its name, not its id
		wantRevoked        []string // the root first when listed, then the rest in any order
		wantNowRevoked     []string // every revoked token of the tree after the call
	}{
		{"parent's tree, through a revoked child, and a rotation's successor", "admin", "parent", true,
			[]string{"parent", "child", "grandchild", "orphan", "successor"},
			[]string{"parent", "child", "gone", "orphan", "grandchild", "successor"}},
		{"run again: nothing left to revoke", "admin", "parent", false, nil,
			[]string{"parent", "child", "gone", "orphan", "grandchild", "successor"}},
		{"a cycle ends (visited set)", "admin", "loopA", false, []string{"loopA", "loopB"},
			[]string{"parent", "child", "gone", "orphan", "grandchild", "successor", "loopA", "loopB"}},
		{"a token that made itself", "admin", "selfmade", false, []string{"selfmade"},
			[]string{"parent", "child", "gone", "orphan", "grandchild", "successor", "loopA", "loopB", "selfmade"}},
		{"a leaf, by its own hand", "sibling", "sibling", false, []string{"sibling"},
			[]string{"parent", "child", "gone", "orphan", "grandchild", "successor", "loopA", "loopB", "selfmade", "sibling"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var by *tokenward.Token
			if tc.caller == "admin" {
				by = admin
			} else {
				by = caller(tc.caller)
			}
			root := tr.ids[tc.root]
			if tc.byName {
				root = tc.root
			}
			tok, ids, err := c.RevokeTokenCascade(ctx, by, root)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ID != tr.ids[tc.root] || tok.RevokedAt.IsZero() {
				t.Errorf("got token %s revoked at %v; want %s revoked", tok.ID, tok.RevokedAt, tr.ids[tc.root])
			}
			got := names(ids)
			if len(got) > 0 {
				slices.Sort(got[1:]) // siblings come in the store's order
			}
			want := slices.Clone(tc.wantRevoked)
			if len(want) > 0 {
				slices.Sort(want[1:])
			}
			if !slices.Equal(got, want) {
				t.Errorf("revoked: got %v; want %v", got, want)
			}
			wantNow := map[string]bool{}
			for name := range tr.ids {
				wantNow[name] = slices.Contains(tc.wantNowRevoked, name)
			}
			if got := revokedNow(t); !maps.Equal(got, wantNow) {
				t.Errorf("revoked after: got %v; want %v", got, wantNow)
			}
		})
	}
	// The binding-minted token was never anybody's: still active.
	if tok, _ := store.Token(ctx, tr.ids["jit"]); !tok.RevokedAt.IsZero() {
		t.Error("the just-in-time token was revoked")
	}
}
