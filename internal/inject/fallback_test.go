package inject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type statusError int

func (e statusError) Error() string { return fmt.Sprintf("server answered %d", int(e)) }

// secretServer is a real HTTP server standing in for the tokenward API.
func secretServer(t *testing.T, vals map[string]string, status *atomic.Int32) (*httptest.Server, func(context.Context) (map[string]string, error)) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		json.NewEncoder(w).Encode(vals)
	}))
	fetch := func(ctx context.Context) (map[string]string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, statusError(resp.StatusCode)
		}
		var out map[string]string
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	return srv, fetch
}

func unreachable(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED)
}

func denied(err error) bool {
	var se statusError
	return errors.As(err, &se) && (se == 401 || se == 403)
}

func TestFallback(t *testing.T) {
	vals := map[string]string{"API_KEY": "sk_live_4eC39Hq", "DB_URL": "postgres://x"}
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		prime    bool          // fetch once while the server is up
		status   int           // server answer on the priming fetch's successor
		advance  time.Duration // clock moves on before the outage
		envs     []string      // --env list at the outage
		wantErr  error
		wantWarn string
	}{
		{"fresh snapshot", true, 0, 30 * time.Minute, nil, nil, "server unreachable: using the fallback snapshot fetched 30m0s ago"},
		{"stale snapshot", true, 0, 2 * time.Hour, nil, ErrSnapshotStale, ""},
		{"absent snapshot", false, 0, 0, nil, ErrSnapshotMissing, ""},
		{"token lost access", true, 403, 0, nil, ErrSnapshotMissing, ""},
		{"other environments", true, 0, 0, []string{"payments/dev"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status atomic.Int32
			srv, fetch := secretServer(t, vals, &status)
			now := t0
			var warns []string
			fb := &Fallback{
				Path: filepath.Join(t.TempDir(), "fallback.snap"), Token: "tws_token", Envs: []string{"payments/prod"},
				MaxAge: time.Hour, Unreachable: unreachable, Denied: denied,
				Now: func() time.Time { return now }, Warn: func(m string) { warns = append(warns, m) },
			}
			if tt.prime {
				got, err := fb.Fetch(context.Background(), fetch)
				if err != nil || !maps.Equal(got, vals) {
					t.Fatalf("priming fetch: got %v, %v; want the values", got, err)
				}
			}
			if tt.status != 0 {
				status.Store(int32(tt.status))
				if _, err := fb.Fetch(context.Background(), fetch); !denied(err) {
					t.Fatalf("refused fetch: got %v; want a 403", err)
				}
			}
			srv.Close() // the outage
			now = now.Add(tt.advance)
			if tt.envs != nil {
				fb.Envs = tt.envs
			}
			got, err := fb.Fetch(context.Background(), fetch)
			switch {
			case tt.wantWarn != "":
				if err != nil || !maps.Equal(got, vals) {
					t.Fatalf("got %v, %v; want the snapshot's values", got, err)
				}
				if len(warns) != 1 || !strings.HasPrefix(warns[0], tt.wantWarn) {
					t.Errorf("warnings %q; want one starting %q", warns, tt.wantWarn)
				}
			case err == nil:
				t.Fatalf("got %v, nil; want an error", got)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("got %v; want %v", err, tt.wantErr)
			case !unreachable(err):
				t.Errorf("got %v; want it to keep the fetch error", err)
			}
		})
	}
}

func TestExport(t *testing.T) {
	vals := map[string]string{"A": "one\ntwo", "B": "three"}
	dir := t.TempDir()
	t.Run("github appends and masks", func(t *testing.T) {
		envFile := filepath.Join(dir, "github_env")
		os.WriteFile(envFile, []byte("EARLIER=1\n"), 0o600)
		var stdout bytes.Buffer
		for range 2 {
			if err := Export(FormatGitHub, vals, envFile, &stdout); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := stdout.String(), strings.Repeat("::add-mask::one\n::add-mask::two\n::add-mask::three\n", 2); got != want {
			t.Errorf("stdout: got %q; want %q", got, want)
		}
		data, _ := os.ReadFile(envFile)
		got, err := Decode(FormatGitHub, bytes.Replace(data, []byte("A<<"), []byte("A2<<"), 1))
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, data)
		}
		if got["EARLIER"] != "1" || got["A"] != vals["A"] || got["A2"] != vals["A"] {
			t.Errorf("got %q; want the earlier line and both appended exports", got)
		}
		if err := Export(FormatGitHub, vals, "", &stdout); err == nil {
			t.Errorf("github without a file: got nil error; want one")
		}
	})
	t.Run("output file", func(t *testing.T) {
		out := filepath.Join(dir, "out.json")
		if err := Export(FormatJSON, vals, out, nil); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(out)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode: got %o; want 600", st.Mode().Perm())
		}
		data, _ := os.ReadFile(out)
		if got, _ := Decode(FormatJSON, data); !maps.Equal(got, vals) {
			t.Errorf("got %q; want %q", got, vals)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		var stdout bytes.Buffer
		if err := Export(FormatDotenv, vals, "", &stdout); err != nil {
			t.Fatal(err)
		}
		if got, want := stdout.String(), "A=\"one\\ntwo\"\nB='three'\n"; got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	})
	t.Run("gitlab multi-line refused, nothing written", func(t *testing.T) {
		out := filepath.Join(dir, "deploy.env")
		if err := Export(FormatGitLab, vals, out, nil); err == nil || !strings.Contains(err.Error(), "multi-line") {
			t.Errorf("got %v; want a multi-line error", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat: got %v; want no file", err)
		}
	})
}
