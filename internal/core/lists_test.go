package core_test

import (
	"slices"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestListsFilterByGrant checks the engine's lists show exactly what a
// token's grants reach, and that a list with nothing in it is [] (not nil,
// which would be JSON null).
func TestListsFilterByGrant(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	f.put(t, "prod", "DB_URL", "v1")
	f.put(t, "prod", "API_KEY", "v2")
	if _, err := f.core.CreateProject(ctx, f.admin, "billing", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	tok := func(grants ...string) *tokenward.Token {
		t := &tokenward.Token{ID: "tok_x", Kind: tokenward.TokenService}
		for _, g := range grants {
			t.Grants = append(t.Grants, tokenward.MustParseGrant(g))
		}
		return t
	}
	tests := []struct {
		name     string
		tok      *tokenward.Token
		projects []string
		secrets  []string // of payments/prod; nil: the list is refused
	}{
		{"admin", f.admin, []string{"billing", "payments"}, []string{"API_KEY", "DB_URL"}},
		{"one secret", tok("read:payments/prod/DB_URL"), []string{"payments"}, []string{"DB_URL"}},
		{"other env", tok("read:payments/dev/*"), []string{"payments"}, nil},
		{"write only", tok("write:payments/prod/*"), []string{"payments"}, nil},
		{"other project", tok("read:billing/*/*"), []string{"billing"}, nil},
		{"nothing", tok("read:elsewhere/*/*"), []string{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := f.core.Projects(ctx, tc.tok)
			names := []string{}
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if err != nil || ps == nil || !slices.Equal(names, tc.projects) {
				t.Errorf("projects: got %v (nil %v), %v; want %v", names, ps == nil, err, tc.projects)
			}
			ss, err := f.core.ListSecrets(ctx, tc.tok, "payments", "prod")
			if tc.secrets == nil {
				if tokenward.ErrorCode(err) != tokenward.EFORBIDDEN {
					t.Errorf("secrets: got %v; want EFORBIDDEN", err)
				}
				return
			}
			names = []string{}
			for _, s := range ss {
				names = append(names, s.Name)
			}
			if err != nil || !slices.Equal(names, tc.secrets) {
				t.Errorf("secrets: got %v, %v; want %v", names, err, tc.secrets)
			}
		})
	}
	if got, err := f.core.Tokens(ctx, tok("read:elsewhere/*/*")); err != nil || got == nil || len(got) != 0 {
		t.Errorf("tokens a stranger manages: got %#v, %v; want []", got, err)
	}
	if _, err := f.core.ListSecrets(ctx, f.admin, "payments", "Bad Env"); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("invalid env: got %v; want EINVALID", err)
	}
}
