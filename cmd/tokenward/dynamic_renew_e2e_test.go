//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
)

// TestRunRenewsDynamicLease: run --dynamic keeps the lease it holds
// renewed while the command runs (a TTL of 4s, a max TTL of 12s), so the
// credential still logs in past the TTL; at the max TTL it warns once,
// naming the lease and when the credential stops working, and never a
// credential. The lease is revoked when the command exits.
func TestRunRenewsDynamicLease(t *testing.T) {
	const ttl = 4 * time.Second
	e := newDynEnv(t)
	e.mustCLI("", "dynamic", "create", "acme/prod/short", "--kind", "postgres", "--admin-secret", "acme/prod/PG_ADMIN_URL",
		"--group", "app_rw", "--ttl", ttl.String(), "--max-ttl", "12s")

	urlFile := filepath.Join(e.dir, "url")
	stop := filepath.Join(e.dir, "stop")
	script := `printf %s "$DATABASE_URL" > ` + urlFile + `.tmp && mv ` + urlFile + `.tmp ` + urlFile +
		`; while [ ! -f ` + stop + ` ]; do sleep 0.05; done`
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), "run", "--env", "acme/prod", "--dynamic", "DATABASE_URL=acme/prod/short", "--", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "TOKENWARD_ADDR="+e.addr, "TOKENWARD_TOKEN="+e.token, "HOME="+e.dir)
	var stdout bytes.Buffer
	stderr := &syncBuf{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// finish lets the command exit and waits for run (once; again at
	// cleanup when the test failed before).
	var runErr error
	finished := false
	finish := func() error {
		if finished {
			return runErr
		}
		finished = true
		os.WriteFile(stop, nil, 0o600)
		select {
		case runErr = <-exited:
			return runErr
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("run did not exit\nstderr:\n%s\nserver log:\n%s", stderr, e.logs)
			return nil
		}
	}
	t.Cleanup(func() { finish() })

	var url string
	if _, ok := within(30*time.Second, func() bool {
		b, _ := os.ReadFile(urlFile)
		url = string(b)
		return url != ""
	}); !ok {
		t.Fatalf("the command did not start\nstderr:\n%s", stderr)
	}
	ls := e.leases("--prefix", "acme/prod/short")
	if len(ls) != 1 {
		t.Fatalf("leases: got %+v; want the run's one", ls)
	}
	l := ls[0]

	// Past the lease's first expiry (the sweep revokes an expired lease
	// within 100ms), the lease is still active, expiring later, and its
	// credential logs in.
	time.Sleep(time.Until(l.CreatedAt.Add(ttl + 1500*time.Millisecond)))
	got := e.leases("--prefix", "acme/prod/short")
	if len(got) != 1 || got[0].ID != l.ID || got[0].State != tokenward.LeaseActive || !got[0].ExpiresAt.After(l.CreatedAt.Add(ttl)) {
		t.Fatalf("lease %s %.1fs after its creation: got %+v; want it active and renewed past %s\nstderr:\n%s",
			l.ID, time.Since(l.CreatedAt).Seconds(), got, l.CreatedAt.Add(ttl).Format(time.RFC3339Nano), stderr)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("log in with the run's credential past its first expiry: %v", err)
	}
	conn.Close(context.Background())

	// At the max TTL: one warning, the lease id and the time only.
	if _, ok := within(30*time.Second, func() bool { return strings.Contains(stderr.String(), "max ttl") }); !ok {
		t.Fatalf("no warning of the max ttl\nstderr:\n%s", stderr)
	}
	if err := finish(); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr)
	}
	errs := stderr.String()
	var warned []string
	for _, line := range strings.Split(errs, "\n") {
		if strings.Contains(line, "max ttl") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0], "tokenward: warning: lease "+l.ID+" reached its max ttl: its credential stops working at ") {
		t.Fatalf("stderr: got max ttl warnings %q; want one naming %s", warned, l.ID)
	}
	u, err := pgx.ParseConfig(url)
	if err != nil || u.Password == "" {
		t.Fatalf("the child's DATABASE_URL: %v", err)
	}
	for _, v := range []string{url, u.Password, e.pg.Password, e.token} {
		if strings.Contains(errs, v) || strings.Contains(stdout.String(), v) {
			t.Fatalf("run's output holds a credential (%.6q...)", v)
		}
	}
	if ls := e.leases("--prefix", "acme/prod/short"); len(ls) != 0 {
		t.Fatalf("live leases after run: %+v; want none", ls)
	}
	if e.roleExists(l.Role) {
		t.Fatalf("role %s outlived the run", l.Role)
	}
	e.noLeak(u.Password, e.pg.Password)
}
