package core_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

// TestChangeVersions: deleting needs write and destroying admin; the
// current version and a version a rotation label points to are never
// destroyed; a destroyed version reads as not found everywhere, and a
// rollback to it is refused.
func TestChangeVersions(t *testing.T) {
	f := mustFixture(t)
	ctx := t.Context()
	for _, v := range []string{"v1-value", "v2-value", "v3-value"} {
		f.put(t, "prod", "API_KEY", v)
	}
	writer, _, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "writer", Kind: tokenward.TokenService, Grants: mustGrants("write:payments/prod/*", "read:payments/prod/*")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.core.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPending(ctx, "payments/prod/API_KEY", "rot_x", []byte("pending-value")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		tok      *tokenward.Token
		change   core.VersionChange
		versions []int
		code     string
	}{
		{"write deletes the current version", writer, core.DeleteVersions, nil, ""},
		{"write undeletes it", writer, core.UndeleteVersions, []int{3}, ""},
		{"write does not destroy", writer, core.DestroyVersions, []int{1}, tokenward.EFORBIDDEN},
		{"the current version is not destroyed", f.admin, core.DestroyVersions, []int{3}, tokenward.ECONFLICT},
		{"nor PENDING", f.admin, core.DestroyVersions, []int{4}, tokenward.ECONFLICT},
		{"version 0 is no version", f.admin, core.DeleteVersions, []int{0, 1}, tokenward.EINVALID},
		{"a version the secret lacks", f.admin, core.DeleteVersions, []int{9}, tokenward.ENOTFOUND},
		{"admin destroys an old version", f.admin, core.DestroyVersions, []int{1, 1}, ""},
	}
	for _, tc := range tests {
		_, err := f.core.ChangeVersions(ctx, tc.tok, tc.change, "payments", "prod", "API_KEY", tc.versions)
		if got := tokenward.ErrorCode(err); got != tc.code {
			t.Errorf("%s: got %v; want code %q", tc.name, err, tc.code)
		}
	}
	st, err := f.core.SecretVersionsState(ctx, f.admin, "payments", "prod", "API_KEY")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.States) != 1 || st.States[1].DestroyedAt.IsZero() || !st.States[3].DeletedAt.IsZero() {
		t.Errorf("states: got %+v; want only version 1, destroyed", st.States)
	}
	if _, _, err := f.core.GetSecret(ctx, f.admin, "payments", "prod", "API_KEY", 1); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("read of the destroyed version: got %v; want not found", err)
	}
	if _, err := f.core.RollbackSecret(ctx, f.admin, "payments", "prod", "API_KEY", 1); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("rollback to the destroyed version: got %v; want not found", err)
	}
	if _, v, err := f.core.GetSecret(ctx, f.admin, "payments", "prod", "API_KEY", 0); err != nil || string(v) != "v3-value" {
		t.Errorf("current: got %q, %v; want v3-value", v, err)
	}
}
