//go:build !tokenward_client

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestGatewayDB drives the real binary: a route made with `gateway db
// create`, psql signing in through --gateway-db-listen with a token, the
// session audited with its bytes, a revoked token and a deleted route
// refused, and neither the database password nor the token in the
// server's log or data directory.
func TestGatewayDB(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	pg := pgtest.Shared(t)
	super := pg.NewDatabase(t)
	dbName := super[strings.LastIndexByte(super, '/')+1 : strings.IndexByte(super, '?')]
	role, password := "gwe2e_"+strings.ToLower(rand.Text()[:10]), "pw-"+rand.Text()
	conn, err := pgx.Connect(t.Context(), super)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password)); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), pg.DSN); err == nil {
			c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
			c.Close(context.Background())
		}
	})

	e := newRotEnv(t)
	gwPort := freePort(t)
	e.args = []string{"--gateway-db-listen", fmt.Sprintf("127.0.0.1:%d", gwPort)}
	t.Cleanup(e.stop)
	e.start()
	e.mustCLI("", "project", "create", "acme", "--envs", "prod")
	e.mustCLI(fmt.Sprintf("postgres://%s:%s@db.invalid/%s", role, password, dbName), "secret", "set", "acme/prod/DATABASE_URL")
	upstream := fmt.Sprintf("%s:%d", pg.Host, pg.Port)
	e.mustCLI("", "gateway", "db", "create", "pgprod", "--upstream", upstream, "--secret", "acme/prod/DATABASE_URL")
	if out := e.mustCLI("", "gateway", "db", "list"); !strings.Contains(out, "pgprod") || !strings.Contains(out, upstream) || !strings.Contains(out, "acme/prod/DATABASE_URL") {
		t.Fatalf("gateway db list: got %q; want the route", out)
	}
	var shown []tokenward.DBRoute
	if err := json.Unmarshal([]byte(e.mustCLI("", "gateway", "db", "show", "pgprod", "-o", "json")), &shown); err != nil || len(shown) != 1 || shown[0].Upstream != upstream || shown[0].SecretPath() != "acme/prod/DATABASE_URL" {
		t.Fatalf("gateway db show: got %+v, %v; want the route", shown, err)
	}
	if _, errs, err := e.cli("", "gateway", "db", "create", "Bad_Name", "--upstream", upstream, "--secret", "acme/prod/DATABASE_URL"); err == nil || !strings.Contains(errs, "route name") {
		t.Fatalf("a bad name: got %v, %q; want a usage error", err, errs)
	}
	token := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "ci-job", "--grant", "gateway:pgprod"))

	run := func(tok string) (string, error) {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-w", fmt.Sprintf("host=127.0.0.1 port=%d user=pgprod dbname=x sslmode=prefer", gwPort), "-c", "SELECT current_user")
		cmd.Env = []string{"PGPASSWORD=" + tok, "PATH=/usr/bin:/bin", "HOME=" + e.dir}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(token); err != nil || out != role {
		t.Fatalf("psql through the gateway: got %q, %v; want %s\nserver log:\n%s", out, err, role, e.logs)
	}

	// The session's end is recorded once the server sees psql's
	// connection close, which may be just after psql exits.
	var entries []tokenward.AuditEntry
	var session *tokenward.AuditEntry
	for deadline := time.Now().Add(20 * time.Second); session == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		entries = nil
		if err := json.Unmarshal([]byte(e.mustCLI("", "audit", "search", "--action", "gateway.db.*", "-o", "json")), &entries); err != nil {
			t.Fatal(err)
		}
		for i := range entries {
			if entries[i].Action == "gateway.db.session" {
				session = &entries[i]
			}
		}
	}
	if session == nil || session.TokenName != "ci-job" || session.Resource != "gateway:pgprod" {
		t.Fatalf("got entries %+v; want a gateway.db.session of ci-job on gateway:pgprod", entries)
	}
	if n, _ := strconv.Atoi(session.Meta["bytes_out"]); n <= 0 {
		t.Fatalf("got meta %v; want bytes out", session.Meta)
	}

	e.mustCLI("", "token", "revoke", "ci-job")
	if out, err := run(token); err == nil || !strings.Contains(out, "is revoked") {
		t.Fatalf("a revoked token: got %q, %v; want refused as revoked", out, err)
	}
	other := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "ci-job-2", "--grant", "gateway:pgprod"))
	e.mustCLI("", "gateway", "db", "delete", "pgprod")
	if out, err := run(other); err == nil || !strings.Contains(out, "route pgprod not found") {
		t.Fatalf("a deleted route: got %q, %v; want refused", out, err)
	}
	e.noLeak(password, token, other)
}
