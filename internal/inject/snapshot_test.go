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

func TestSnapshot(t *testing.T) {
	const token = "tws_example-token-for-tests"
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	vals := map[string]string{"API_KEY": "sk_live_4eC39Hq", "PEM": "a\nb"}
	envs := []string{"payments/prod", "shared/prod"}

	write := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "fallback.snap")
		if err := SaveSnapshot(path, token, envs, vals, now); err != nil {
			t.Fatal(err)
		}
		return path
	}
	flip := func(off int) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			data, _ := os.ReadFile(path)
			if off < 0 {
				off += len(data)
			}
			data[off] ^= 0x01
			os.WriteFile(path, data, 0o600)
		}
	}
	tests := []struct {
		name    string
		token   string
		maxAge  time.Duration
		at      time.Time
		mangle  func(t *testing.T, path string)
		wantErr error
	}{
		{"fresh", token, time.Hour, now.Add(59 * time.Minute), nil, nil},
		{"small clock skew", token, time.Hour, now.Add(-time.Minute), nil, nil},
		{"stale", token, time.Hour, now.Add(61 * time.Minute), nil, ErrSnapshotStale},
		{"from the future", token, time.Hour, now.Add(-time.Hour), nil, ErrSnapshotStale},
		{"wrong token", "tws_other-token", time.Hour, now, nil, ErrSnapshotWrongToken},
		{"tampered ciphertext", token, time.Hour, now, flip(-1), ErrSnapshotCorrupt},
		{"tampered nonce", token, time.Hour, now, flip(snapHeadLen), ErrSnapshotCorrupt},
		{"tampered version", token, time.Hour, now, flip(len(snapMagic)), ErrSnapshotCorrupt},
		{"tampered check value", token, time.Hour, now, flip(snapHeadLen - 1), ErrSnapshotWrongToken},
		{"truncated", token, time.Hour, now, func(t *testing.T, p string) { os.WriteFile(p, []byte("TWSNAP\x01"), 0o600) }, ErrSnapshotCorrupt},
		{"absent", token, time.Hour, now, func(t *testing.T, p string) { os.Remove(p) }, ErrSnapshotMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t)
			if tt.mangle != nil {
				tt.mangle(t, path)
			}
			got, err := LoadSnapshot(path, tt.token, tt.maxAge, tt.at)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got err %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !maps.Equal(got.Values, vals) || !slices.Equal(got.Envs, envs) || !got.FetchedAt.Equal(now) {
				t.Errorf("got %v %v %v; want the saved snapshot", got.FetchedAt, got.Envs, len(got.Values))
			}
		})
	}

	t.Run("file is 0600 and holds no plaintext", func(t *testing.T) {
		path := write(t)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode: got %o; want 600", st.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		for _, plain := range []string{"sk_live_4eC39Hq", "API_KEY", "payments", token} {
			if bytes.Contains(data, []byte(plain)) {
				t.Errorf("snapshot file holds %q in plaintext", plain)
			}
		}
	})
	t.Run("fresh salt each save", func(t *testing.T) {
		a, b := write(t), write(t)
		da, _ := os.ReadFile(a)
		db, _ := os.ReadFile(b)
		if bytes.Equal(da[:snapHeadLen], db[:snapHeadLen]) {
			t.Errorf("two saves share a header; want a fresh random salt")
		}
	})
}

// FuzzLoadSnapshot feeds arbitrary files to LoadSnapshot: it must never
// panic, and only a file sealed with the token may open.
func FuzzLoadSnapshot(f *testing.F) {
	const token = "tws_fuzz"
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := SaveSnapshot(seed, token, []string{"p/e"}, map[string]string{"K": "v"}, now); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(seed)
	f.Add(data)
	f.Add([]byte("TWSNAP\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "snap")
		os.WriteFile(path, data, 0o600)
		s, err := LoadSnapshot(path, token, time.Hour, now)
		if err == nil && s == nil {
			t.Fatal("got nil snapshot and nil error")
		}
		if err != nil && !errors.Is(err, ErrSnapshotCorrupt) && !errors.Is(err, ErrSnapshotWrongToken) && !errors.Is(err, ErrSnapshotStale) {
			t.Fatalf("got %v; want one of the documented errors", err)
		}
	})
}

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
		if token == "" {
			t.Skip()
		}
		// Each on its own: invalid pieces can join into valid UTF-8.
		for _, s := range []string{env, n1, v1, n2, v2} {
			if !utf8.ValidString(s) {
				t.Skip()
			}
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
