package inject

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzSnapshotRoundTrip checks the --fallback snapshot from the writing
// side: what SaveSnapshot writes, LoadSnapshot with the same token gives
// back unchanged (values as the server sends them, UTF-8 in JSON); another
// token gets ErrSnapshotWrongToken and nothing else; and the file holds
// neither a value nor the token in plaintext.
func FuzzSnapshotRoundTrip(f *testing.F) {
	f.Add("tws_fuzz_token", "payments/prod", "API_KEY", "sk_live_0123456789", "B", "")
	f.Add("t", "", "X", "line\nbreak \"quoted\" \\", "Y", "ünïcødé")
	f.Add("twj_x", "a/b", "A", "\u2028\u2029<>&", "B", "{\"json\":true}")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, token, env, n1, v1, n2, v2 string) {
		if token == "" || !utf8.ValidString(env+n1+v1+n2+v2) {
			t.Skip()
		}
		values := map[string]string{n1: v1, n2: v2}
		path := filepath.Join(t.TempDir(), "snap")
		if err := SaveSnapshot(path, token, []string{env}, values, now); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		s, err := LoadSnapshot(path, token, time.Hour, now.Add(time.Minute))
		if err != nil {
			t.Fatalf("LoadSnapshot with the same token: %v", err)
		}
		if !maps.Equal(s.Values, values) || !slices.Equal(s.Envs, []string{env}) || !s.FetchedAt.Equal(now) {
			t.Fatalf("got %q %q %v; want %q %q %v", s.Values, s.Envs, s.FetchedAt, values, []string{env}, now)
		}
		if _, err := LoadSnapshot(path, token+"x", time.Hour, now); !errors.Is(err, ErrSnapshotWrongToken) {
			t.Fatalf("LoadSnapshot with another token: got %v; want ErrSnapshotWrongToken", err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{token, v1, v2} {
			if len(secret) >= 8 && bytes.Contains(data, []byte(secret)) {
				t.Fatalf("snapshot file holds %q in plaintext", secret)
			}
		}
	})
}
