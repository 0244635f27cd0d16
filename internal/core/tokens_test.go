package core_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

// TestCreateTokenOwnerText: a token's owner holds what both stores hold
// alike; SQLite had stored a NUL byte that PostgreSQL refuses (so a
// migration of the install failed).
func TestCreateTokenOwnerText(t *testing.T) {
	f := mustFixture(t)
	grants := tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}
	for _, owner := range []string{"team\x00payments", "\xff"} {
		if _, _, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "bot", Owner: owner, Grants: grants}); tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("owner %q: got %v; want invalid", owner, err)
		}
	}
	if _, _, err := f.core.CreateToken(t.Context(), f.admin, core.CreateTokenInput{Name: "bot", Owner: "Zoë <zoe@example.com>", Grants: grants}); err != nil {
		t.Fatalf("a UTF-8 owner: %v", err)
	}
}
