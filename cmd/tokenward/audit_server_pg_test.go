//go:build !tokenward_client

package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestPostgresAuditSync: on PostgreSQL a server commits every audit entry
// to the database before the answer by default (the chain that servers
// sharing the database keep together), and refuses --audit-sync journal,
// a file on one machine's disk, with a message that says why and what to
// do, and that does not repeat the database password.
func TestPostgresAuditSync(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	bin := filepath.Join(binDir, "tokenward")
	e := newPGEnv(t, url)
	data := filepath.Join(e.dir, "data")

	t.Run("journal refused", func(t *testing.T) {
		cmd := exec.Command(bin, "server", "--data-dir", data, "--storage", url, "--audit-sync", "journal",
			"--addr", fmt.Sprintf("127.0.0.1:%d", e.port))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 2 || !strings.Contains(stderr.String(), "--audit-sync journal is for SQLite") {
			t.Fatalf("server --audit-sync journal on PostgreSQL: got exit %d, %q; want exit 2 and the reason", code, stderr.String())
		}
		if strings.Contains(stderr.String(), pg.Password) {
			t.Errorf("the refusal repeats the database password")
		}
	})

	t.Run("default commits before the answer", func(t *testing.T) {
		e.start()
		e.mustCLI("", "project", "create", "payments", "--envs", "prod")
		if !strings.Contains(e.logs.String(), "sync=normal") {
			t.Errorf("server log: want the audit trail's sync=normal\n%s", e.logs)
		}
		// The answer came after the commit: the entry is there now, not
		// within an ingest delay.
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'project.create' AND resource = 'payments'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("audit entries of the answered project.create: got %d; want 1", n)
		}
	})
}
