//go:build !tokenward_client

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunWatchKeepsDynamicCredential: a --watch restart (a stored secret
// changed) must start the command again with the --dynamic credential the
// run holds a lease of, not without it.
func TestRunWatchKeepsDynamicCredential(t *testing.T) {
	e := newDynEnv(t)
	log := filepath.Join(e.dir, "starts.log")
	stop := filepath.Join(e.dir, "stop")
	script := `echo "start ${DATABASE_URL:+has-url}" >> ` + log + `; trap 'exit 0' TERM; while [ ! -f ` + stop + ` ]; do sleep 0.05; done`
	type result struct {
		out, errs string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		out, errs, err := e.cli("", "run", "--env", "acme/prod", "--watch", "--watch-interval", "1s", "--stop-timeout", "5s",
			"--dynamic", "DATABASE_URL=acme/prod/db", "--", "sh", "-c", script)
		done <- result{out, errs, err}
	}()
	waitLines := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(log)
			if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(b) > 0 && len(lines) >= n {
				return lines
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %d starts; log: %q", n, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitLines(1)
	e.mustCLI("fake-other-value-1234", "secret", "set", "acme/prod/OTHER")
	lines := waitLines(2)
	os.WriteFile(stop, nil, 0o600)
	r := <-done
	if r.err != nil {
		t.Fatalf("run: %v\n%s%s", r.err, r.out, r.errs)
	}
	if !strings.Contains(r.errs, "restarting the command") {
		t.Fatalf("run did not restart: %s", r.errs)
	}
	for i, l := range lines[:2] {
		if l != "start has-url" {
			t.Errorf("start %d: got %q; want the --dynamic credential in DATABASE_URL", i+1, l)
		}
	}
	if ls := e.leases(); len(ls) != 0 {
		t.Fatalf("live leases after run: %+v; want none", ls)
	}
}

// TestExportFailureRevokesLeases: when export fails after making a
// --dynamic credential (an unknown --only name, a value its format
// refuses), nothing was exported, so the lease must not stay live.
func TestExportFailureRevokesLeases(t *testing.T) {
	e := newDynEnv(t)
	for _, args := range [][]string{
		{"--only", "NO_SUCH_NAME"},
		{"--format", "github", "--output", filepath.Join(e.dir, "no-such-dir", "github.env")},
	} {
		args = append([]string{"export", "--env", "acme/prod", "--dynamic", "DATABASE_URL=acme/prod/db"}, args...)
		if out, errs, err := e.cli("", args...); err == nil {
			t.Fatalf("tokenward %s: succeeded; want an error\n%s%s", strings.Join(args, " "), out, errs)
		}
		if ls := e.leases(); len(ls) != 0 {
			t.Errorf("tokenward %s failed but left %d live leases; want them revoked", strings.Join(args, " "), len(ls))
			e.mustCLI("", "lease", "revoke", "--prefix", "acme/prod/db")
		}
	}
}
