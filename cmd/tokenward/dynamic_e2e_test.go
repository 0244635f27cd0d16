//go:build !tokenward_client

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// dynEnv is a real server with a dynamic source on a real PostgreSQL
// database: acme/prod/db, members of app_rw, which may read one table.
type dynEnv struct {
	*rotEnv
	pg       *pgtest.Cluster
	adminURL string
	conn     *pgx.Conn
}

func newDynEnv(t *testing.T, serverArgs ...string) *dynEnv {
	t.Helper()
	pg := pgtest.Shared(t)
	e := &dynEnv{rotEnv: newRotEnv(t), pg: pg, adminURL: pg.NewDatabase(t)}
	e.args = append([]string{"--lease-sweep-interval", "100ms", "--lease-orphan-after", "1s"}, serverArgs...)
	e.start()
	var err error
	if e.conn, err = pgx.Connect(t.Context(), e.adminURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	for _, q := range []string{`DROP ROLE IF EXISTS app_rw`, `CREATE ROLE app_rw NOLOGIN`, `CREATE TABLE items (id int)`, `GRANT SELECT ON items TO app_rw`} {
		if _, err := e.conn.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pg.DSN)
		if err == nil {
			conn.Exec(context.Background(), "DROP ROLE IF EXISTS app_rw")
			conn.Close(context.Background())
		}
	})
	e.mustCLI("", "project", "create", "acme", "--envs", "prod")
	e.mustCLI(e.adminURL, "secret", "set", "acme/prod/PG_ADMIN_URL")
	e.mustCLI("", "dynamic", "create", "acme/prod/db", "--kind", "postgres", "--admin-secret", "acme/prod/PG_ADMIN_URL",
		"--group", "app_rw", "--ttl", "15m", "--max-ttl", "1h")
	return e
}

func (e *dynEnv) roleExists(role string) bool {
	e.t.Helper()
	var n int
	if err := e.conn.QueryRow(e.t.Context(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`, role).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

func (e *dynEnv) leases(args ...string) []tokenward.Lease {
	e.t.Helper()
	var ls []tokenward.Lease
	if err := json.Unmarshal([]byte(e.mustCLI("", append([]string{"lease", "list", "-o", "json"}, args...)...)), &ls); err != nil {
		e.t.Fatal(err)
	}
	return ls
}

// waitGone polls until role is dropped (the sweep runs every 100ms).
func (e *dynEnv) waitGone(role string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.roleExists(role) {
		if time.Now().After(deadline) {
			e.t.Fatalf("role %s still exists\nserver log:\n%s", role, e.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDynamicSourceThroughServer(t *testing.T) {
	e := newDynEnv(t)
	var passwords []string

	// A source and a stored secret never share a path: a stored value
	// would stand in for the credentials made for each job.
	if _, errs, err := e.cli("a-stored-password", "secret", "set", "acme/prod/db"); err == nil || !strings.Contains(errs, "acme/prod/db is a dynamic source") {
		t.Fatalf("secret set at a source's path: %v %s; want refused", err, errs)
	}
	if _, errs, err := e.cli("", "dynamic", "create", "acme/prod/PG_ADMIN_URL", "--kind", "postgres", "--admin-secret", "acme/prod/PG_ADMIN_URL",
		"--group", "app_rw", "--ttl", "15m"); err == nil || !strings.Contains(errs, "acme/prod/PG_ADMIN_URL is a stored secret") {
		t.Fatalf("dynamic create at a secret's path: %v %s; want refused", err, errs)
	}
	// A source is checked against its database before it is stored: a
	// group that does not exist fails now, not at a job's first read;
	// --skip-check stores it anyway, and the audit trail says so.
	if _, errs, err := e.cli("", "dynamic", "create", "acme/prod/other", "--admin-secret", "acme/prod/PG_ADMIN_URL", "--group", "no_such_group",
		"--ttl", "15m"); err == nil || !strings.Contains(errs, `check: creation_sql: role "no_such_group" does not exist`) {
		t.Fatalf("dynamic create with a missing group: %v %s; want refused by the check", err, errs)
	}
	if _, errs, err := e.cli("", "dynamic", "show", "acme/prod/other"); err == nil || !strings.Contains(errs, "not found") {
		t.Fatalf("dynamic show after a failed check: %v %s; want not found", err, errs)
	}
	e.mustCLI("", "dynamic", "create", "acme/prod/other", "--admin-secret", "acme/prod/PG_ADMIN_URL", "--group", "no_such_group", "--ttl", "15m", "--skip-check")
	if out := e.mustCLI("", "audit", "search", "--action", "dynamic.write", "-o", "json"); strings.Count(out, `"checked": "false"`) != 1 ||
		strings.Count(out, `"checked": "true"`) != 3 {
		t.Fatalf("audit of the source writes: got %s; want one unchecked, three checked (the first source, and the two refused)", out)
	}
	e.mustCLI("", "dynamic", "delete", "acme/prod/other")
	// apply checks a declared source too, unless skip_check.
	man := filepath.Join(e.dir, "tokenward.yaml")
	for _, tc := range []struct {
		skip string
		ok   bool
	}{{"false", false}, {"true", true}} {
		body := "project: acme\nenvironments: [prod]\nsecrets:\n  PG_ADMIN_URL:\ndynamic:\n  other:\n    kind: postgres\n" +
			"    admin_secret: PG_ADMIN_URL\n    group: no_such_group\n    ttl: 15m\n    skip_check: " + tc.skip + "\n"
		if err := os.WriteFile(man, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errs, err := e.cli("", "apply", "--manifest", man)
		_, _, showErr := e.cli("", "dynamic", "show", "acme/prod/other")
		if (err == nil) != tc.ok || (showErr == nil) != tc.ok {
			t.Fatalf("apply with skip_check: %s: %v (show: %v); want created %v\n%s%s", tc.skip, err, showErr, tc.ok, out, errs)
		}
	}
	e.mustCLI("", "dynamic", "delete", "acme/prod/other")

	// secret get of a dynamic source: a credential that logs in.
	out, errs, err := e.cli("", "secret", "get", "acme/prod/db")
	if err != nil || !strings.Contains(errs, "lease lease_") {
		t.Fatalf("secret get: %v %s", err, errs)
	}
	conn, err := pgx.Connect(t.Context(), out)
	if err != nil {
		t.Fatalf("log in with the leased URL: %v", err)
	}
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
		t.Fatalf("read the group's table: %v", err)
	}
	if u, _ := pgx.ParseConfig(out); u != nil {
		passwords = append(passwords, u.Password)
	}
	ls := e.leases()
	if len(ls) != 1 || ls[0].State != tokenward.LeaseActive || !e.roleExists(ls[0].Role) {
		t.Fatalf("leases: got %+v; want one active", ls)
	}
	// Renewal within the max TTL moves the expiry; past it, it is capped
	// at the max TTL with a warning, as in Vault.
	var renewed tokenward.Lease
	if err := json.Unmarshal([]byte(e.mustCLI("", "lease", "renew", ls[0].ID, "--increment", "30m", "-o", "json")), &renewed); err != nil ||
		!renewed.ExpiresAt.After(ls[0].ExpiresAt) {
		t.Fatalf("lease renew: %+v, %v; want a later expiry than %v", renewed, err, ls[0].ExpiresAt)
	}
	maxAt := ls[0].MaxExpiresAt.Format(time.RFC3339)
	if out, errs, err := e.cli("", "lease", "renew", ls[0].ID, "--increment", "2h"); err != nil || !strings.Contains(out+errs, "expires at "+maxAt) ||
		!strings.Contains(errs, "warning: lease "+ls[0].ID+" is renewed only up to its max ttl, "+maxAt) {
		t.Fatalf("lease renew past the max ttl: %v\n%s\n%s; want it capped at %s with a warning", err, out, errs, maxAt)
	}
	if out := e.mustCLI("", "lease", "show", ls[0].ID); !strings.Contains(out, ls[0].Role) || !strings.Contains(out, "active") {
		t.Fatalf("lease show: %s", out)
	}
	// Revoke by prefix (an incident): the open session ends, the role goes.
	e.mustCLI("", "lease", "revoke", "--prefix", "acme/prod/db")
	if _, err := conn.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Fatal("the session outlived its lease's revocation")
	}
	conn.Close(context.Background())
	if e.roleExists(ls[0].Role) {
		t.Fatal("the role outlived its lease's revocation")
	}

	// run --dynamic: the child gets the credential (masked in its
	// output); the lease is revoked when it exits.
	file := filepath.Join(e.dir, "url")
	out = e.mustCLI("", "run", "--env", "acme/prod", "--dynamic", "DATABASE_URL=acme/prod/db", "--", "sh", "-c", `printf %s "$DATABASE_URL" > `+file+`; echo "url=$DATABASE_URL"`)
	if !strings.Contains(out, "url=***") {
		t.Fatalf("run output: got %q; want the URL masked", out)
	}
	leased, _ := os.ReadFile(file)
	if u, err := pgx.ParseConfig(string(leased)); err != nil || !strings.HasPrefix(u.User, "tw_") {
		t.Fatalf("the child's DATABASE_URL: %v; want a tw_ role's URL", err)
	} else {
		passwords = append(passwords, u.Password)
		if e.roleExists(u.User) {
			t.Fatalf("role %s outlived the run", u.User)
		}
	}
	if ls := e.leases(); len(ls) != 0 {
		t.Fatalf("live leases after run: %+v; want none", ls)
	}

	// A token's leases go with it.
	tok := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "job", "--grant", "read:acme/prod/db", "--ttl", "1h"))
	jobCLI := func(args ...string) string {
		t.Helper()
		e2 := *e.rotEnv
		e2.token = tok
		return e2.mustCLI("", args...)
	}
	url := jobCLI("secret", "get", "acme/prod/db")
	if u, _ := pgx.ParseConfig(url); u != nil {
		passwords = append(passwords, u.Password)
	}
	ls = e.leases("--prefix", "acme/prod/db")
	if len(ls) != 1 {
		t.Fatalf("got %d live leases; want the job's one", len(ls))
	}
	e.mustCLI("", "token", "revoke", "job")
	if e.roleExists(ls[0].Role) {
		t.Fatal("the role outlived its token's revocation")
	}
	all := e.leases("--all")
	// Revoked inline by the token's revocation ("token revoked"), or by the
	// leader's sweep when it got there first ("token revoked or expired").
	if len(all) != 3 || all[2].State != tokenward.LeaseRevoked || !strings.HasPrefix(all[2].Reason, "token revoked") {
		t.Fatalf("leases: got %+v; want 3, the last revoked with its token", all)
	}

	// The audit trail names each lease event, and no credential.
	audit := e.mustCLI("", "audit", "search", "-o", "json", "--limit", "1000")
	for _, action := range []string{"lease.create", "lease.revoke_prefix", "lease.revoke", "lease.revoked"} {
		if !strings.Contains(audit, `"`+action+`"`) {
			t.Errorf("the audit trail has no %s entry", action)
		}
	}
	for _, p := range append(passwords, e.pg.Password) {
		if p == "" || strings.Contains(audit, p) {
			t.Fatalf("the audit trail holds a password (or none was read: %d)", len(passwords))
		}
	}
	e.noLeak(append(passwords, e.pg.Password)...)
}

// TestLeaseOrphanOfACrashIsSwept: the server dies (SIGKILL) between CREATE
// ROLE and the lease's activation; after a restart the sweep drops the
// role, found through the lease recorded before it was created.
func TestLeaseOrphanOfACrashIsSwept(t *testing.T) {
	e := newDynEnv(t)
	e.stop()
	e.start(crashEnv + "=lease:created")
	if _, _, err := e.cli("", "secret", "get", "acme/prod/db"); err == nil {
		t.Fatal("secret get succeeded on a server that dies at lease:created")
	}
	if err := e.waitExit(); err == nil {
		t.Fatal("the server exited cleanly; want killed")
	}
	var orphans []string
	rows, err := e.conn.Query(t.Context(), `SELECT rolname FROM pg_roles WHERE rolname LIKE 'tw\_%' AND pg_has_role(rolname, 'app_rw', 'MEMBER')`)
	if err != nil {
		t.Fatal(err)
	}
	orphans, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(orphans) != 1 {
		t.Fatalf("roles after the crash: %v, %v; want the one orphan", orphans, err)
	}
	e.start()
	e.waitGone(orphans[0])
	all := e.leases("--all")
	if len(all) != 1 || all[0].Role != orphans[0] || all[0].State != tokenward.LeaseRevoked || all[0].Reason != "orphaned creation" {
		t.Fatalf("leases: got %+v; want the orphan revoked", all)
	}
}

// TestDynamicSourceRetired: retiring an environment revokes its sources'
// live leases (the roles are dropped) and refuses new leases and sources
// there until it is restored; once a retired environment's archive is
// purged, its sources are deleted.
func TestDynamicSourceRetired(t *testing.T) {
	e := newDynEnv(t, "--hygiene-interval", "1s")
	if _, errs, err := e.cli("", "secret", "get", "acme/prod/db"); err != nil {
		t.Fatalf("secret get: %v %s", err, errs)
	}
	ls := e.leases()
	if len(ls) != 1 || !e.roleExists(ls[0].Role) {
		t.Fatalf("leases: got %+v; want one live", ls)
	}
	if plan := e.mustCLI("", "env", "retire", "acme/prod", "--dry-run"); !strings.Contains(plan, ls[0].ID) {
		t.Fatalf("retire plan: %s; want the lease %s in it", plan, ls[0].ID)
	}
	e.mustCLI("", "env", "retire", "acme/prod")
	e.waitGone(ls[0].Role)
	if got := e.leases("--all"); len(got) != 1 || got[0].State != tokenward.LeaseRevoked || !strings.Contains(got[0].Reason, "retired acme/prod") {
		t.Fatalf("after retire: got %+v; want the lease revoked for the retirement", got)
	}
	for _, args := range [][]string{
		{"secret", "get", "acme/prod/db"},
		{"dynamic", "create", "acme/prod/db2", "--kind", "postgres", "--admin-secret", "acme/prod/PG_ADMIN_URL", "--group", "app_rw", "--ttl", "15m"},
	} {
		if _, errs, err := e.cli("", args...); err == nil || !strings.Contains(errs, "acme/prod is retired") {
			t.Fatalf("%s in a retired environment: %v %s; want refused", args[:2], err, errs)
		}
	}
	e.mustCLI("", "env", "restore", "acme/prod")
	if _, errs, err := e.cli("", "secret", "get", "acme/prod/db"); err != nil || !strings.Contains(errs, "lease lease_") {
		t.Fatalf("secret get after restore: %v %s; want a lease", err, errs)
	}

	// Retired for a second: the hygiene job purges the archive, and the
	// source goes with it (kept, it would lease again).
	e.mustCLI("", "env", "retire", "acme/prod", "--retention", "1s")
	if _, ok := within(15*time.Second, func() bool { return !strings.Contains(e.mustCLI("", "dynamic", "list"), "acme/prod/db") }); !ok {
		t.Fatalf("the source outlived its environment's purge\nserver log:\n%s", e.logs)
	}
	if _, errs, err := e.cli("", "secret", "get", "acme/prod/db"); err == nil || !strings.Contains(errs, "not found") {
		t.Fatalf("secret get after the purge: %v %s; want not found", err, errs)
	}
}
