package core_test

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/scan"
)

// plainStore hides the SQLite store's label power, as a backend without
// version labels would.
type plainStore struct{ tokenward.Store }

// TestManagedFingerprintsWithoutLabels checks the fallback for stores
// without labels: PREVIOUS is the version just below CURRENT. It also
// checks the key size is enforced.
func TestManagedFingerprintsWithoutLabels(t *testing.T) {
	f := mustFixture(t)
	f.put(t, "prod", "API_KEY", "value-one-0123456789")
	f.put(t, "prod", "API_KEY", "value-two-0123456789")
	f.put(t, "dev", "ONLY", "dev-only-value-012345")
	key := make([]byte, core.ScanKeySize)
	rand.Read(key)
	want := func(pathValues ...string) []string {
		var out []string
		for i := 0; i < len(pathValues); i += 2 {
			sum := scan.ManagedFingerprint(key, []byte(pathValues[i+1]))
			out = append(out, pathValues[i]+" "+hex.EncodeToString(sum[:]))
		}
		slices.Sort(out)
		return out
	}
	got := func(c *core.Core) []string {
		t.Helper()
		fps, err := c.ManagedFingerprints(t.Context(), f.admin, key)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, fp := range fps {
			out = append(out, fp.Path+" "+fp.HMAC)
		}
		slices.Sort(out)
		return out
	}
	if g, w := got(f.core), want("payments/prod/API_KEY", "value-two-0123456789", "payments/dev/ONLY", "dev-only-value-012345"); !slices.Equal(g, w) {
		t.Errorf("labelled store: got %q; want %q", g, w)
	}
	plain, err := core.New(t.Context(), plainStore{f.db}, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := got(plain), want("payments/prod/API_KEY", "value-two-0123456789", "payments/prod/API_KEY", "value-one-0123456789",
		"payments/dev/ONLY", "dev-only-value-012345"); !slices.Equal(g, w) {
		t.Errorf("store without labels: got %q; want %q", g, w)
	}
	for _, n := range []int{0, 16, 33} {
		if _, err := f.core.ManagedFingerprints(t.Context(), f.admin, make([]byte, n)); tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("key of %d bytes: got %v; want EINVALID", n, err)
		}
	}
}
