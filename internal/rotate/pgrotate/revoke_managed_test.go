package pgrotate

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/pgrole"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// guardRoles (re)creates the roles the revoke guard tests use: the group
// rg, its two configured login roles, a login from before rotation that
// is a member of rg, a superuser admin and a CREATEROLE admin, and roles
// that are not the rotator's to retire. Every login role's password is
// its name + "-pw".
func guardRoles(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	roles := []string{"rg_a", "rg_b", "rg_legacy", "rg_admin", "rg_creator", "rg_super", "rg_other", "rg_dba", "rg_rls", "rg_owner", "rg"}
	var stmts []string
	for _, r := range roles {
		stmts = append(stmts, "DROP ROLE IF EXISTS "+pgrole.QuoteIdent(r))
	}
	stmts = append(stmts,
		"CREATE ROLE rg NOLOGIN",
		"CREATE ROLE rg_a LOGIN PASSWORD 'rg_a-pw' IN ROLE rg",
		"CREATE ROLE rg_b LOGIN PASSWORD 'rg_b-pw' IN ROLE rg",
		"CREATE ROLE rg_legacy LOGIN PASSWORD 'rg_legacy-pw' IN ROLE rg",
		"CREATE ROLE rg_admin LOGIN SUPERUSER PASSWORD 'rg_admin-pw'",
		// a non-superuser admin, itself a member of the group
		"CREATE ROLE rg_creator LOGIN CREATEROLE PASSWORD 'rg_creator-pw' IN ROLE rg",
		// membership of the group alone does not make a role the rotator's
		"CREATE ROLE rg_super LOGIN SUPERUSER PASSWORD 'rg_super-pw' IN ROLE rg",
		"CREATE ROLE rg_dba LOGIN CREATEROLE PASSWORD 'rg_dba-pw' IN ROLE rg",
		"CREATE ROLE rg_rls LOGIN BYPASSRLS PASSWORD 'rg_rls-pw' IN ROLE rg",
		"CREATE ROLE rg_owner LOGIN PASSWORD 'rg_owner-pw'",
		"GRANT rg TO rg_owner WITH ADMIN OPTION",
		"CREATE ROLE rg_other LOGIN PASSWORD 'rg_other-pw'",
	)
	for _, s := range stmts {
		if _, err := admin.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// The value Revoke retires is the secret's PREVIOUS value, which whoever
// may write the secret chose: it must not make the rotator's admin
// connection take the login of a role the rotator does not manage.
// superConn is a superuser connection to c, closed when the test ends.
func superConn(t *testing.T, c *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestRevokeRetiresOnlyRolesTheRotatorManages(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	super := superConn(t, c)
	base := "postgres://" + c.Host + ":" + strconv.Itoa(c.Port) + "/postgres?sslmode=disable"
	cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": "rg", "url": base}
	pc, err := parsePGConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// the current code took the cluster superuser's login too: give it back
	defer super.Exec(ctx, "ALTER ROLE "+pgrole.QuoteIdent(c.User)+" WITH LOGIN PASSWORD "+pgrole.QuoteLiteral(c.Password))
	canLogin := func(user string) error {
		return pgLogin(ctx, c.URL(user, user+"-pw", "postgres"), user)
	}
	const planted = "planted-password-123" // what the writer put in the value
	tests := []struct {
		name, admin, user string // admin: the admin connection's role
		revoked           bool
	}{
		{"configured role", "rg_admin", "rg_a", true},
		{"login from before rotation, a member of the group", "rg_admin", "rg_legacy", true},
		{"configured role, CREATEROLE admin", "rg_creator", "rg_b", true},
		{"the admin connection's own role, a superuser", "rg_admin", "rg_admin", false},
		{"the admin connection's own role, CREATEROLE", "rg_creator", "rg_creator", false},
		{"another superuser in the group", "rg_admin", "rg_super", false},
		{"the cluster's superuser", "rg_admin", c.User, false},
		{"an unrelated role", "rg_admin", "rg_other", false},
		{"an unrelated role, CREATEROLE admin", "rg_creator", "rg_other", false},
		{"a CREATEROLE member of the group", "rg_admin", "rg_dba", false},
		{"a BYPASSRLS member of the group", "rg_admin", "rg_rls", false},
		{"the group's admin", "rg_admin", "rg_owner", false},
		{"the group role", "rg_admin", "rg", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			guardRoles(t, super)
			pending := pc.encode(pgCredential{User: "rg_b", Password: "rg_b-pw"})
			if tt.user == "rg_b" {
				pending = pc.encode(pgCredential{User: "rg_a", Password: "rg_a-pw"})
			}
			password := planted
			if tt.revoked {
				password = tt.user + "-pw"
			}
			p := &Rotator{Secrets: adminSecret(c.URL(tt.admin, tt.admin+"-pw", "postgres"))}
			req := &rotate.Request{Config: cfg, Current: pc.encode(pgCredential{User: tt.user, Password: password}), Pending: pending}
			err := p.Revoke(ctx, req)
			if tt.revoked {
				if err != nil {
					t.Fatalf("Revoke: %v; want the previous role retired", err)
				}
				if err := canLogin(tt.user); err == nil {
					t.Fatalf("login as %s after Revoke: got success; want failure", tt.user)
				}
				return
			}
			if err == nil {
				t.Fatalf("Revoke of %s: got nil; want a refusal", tt.user)
			}
			if got := tokenward.ErrorCode(err); got != tokenward.EINVALID {
				t.Errorf("Revoke of %s: got code %s (%v); want %s", tt.user, got, err, tokenward.EINVALID)
			}
			if !strings.Contains(err.Error(), strconv.Quote(tt.user)) {
				t.Errorf("Revoke error %q: want it to name the role %q", err, tt.user)
			}
			for _, pw := range []string{planted, tt.user + "-pw", tt.admin + "-pw", c.Password} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("Revoke error %q holds a password", err)
				}
			}
			if tt.user == "rg" || tt.user == c.User {
				var login bool
				if err := super.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", tt.user).Scan(&login); err != nil {
					t.Fatal(err)
				}
				if want := tt.user != "rg"; login != want {
					t.Fatalf("%s rolcanlogin after Revoke: got %v; want %v", tt.user, login, want)
				}
				return
			}
			if err := canLogin(tt.user); err != nil {
				t.Fatalf("login as %s after the refused Revoke: %v; want success", tt.user, err)
			}
		})
	}
}

// pgMachine is the postgres rotator under a machine over the real store
// (SQLite, sealed and labelled versions), as the server wires them, with
// the default MaxAttempts. Its clock moves only by hand.
type pgMachine struct {
	m       *rotate.Machine
	store   rotate.Store
	secrets *core.RotationSecrets
	now     time.Time
	alerts  []rotate.Rotation
	put     func(path, value string) // a new CURRENT version, as "secret set"
}

func newPGMachine(t *testing.T) *pgMachine {
	t.Helper()
	ctx := context.Background()
	pm := &pgMachine{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return pm.now }
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "tokenward.db"))
	db.Now = clock
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := seal.NewKey()
	adminToken, err := core.Init(ctx, db, key, pm.now)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := core.New(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	cr.Now = clock
	tok, err := cr.Authenticate(ctx, adminToken, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if pm.secrets, err = cr.RotationSecrets(); err != nil {
		t.Fatal(err)
	}
	if _, err := cr.CreateProject(ctx, tok, "p", []string{"e"}); err != nil {
		t.Fatal(err)
	}
	pm.put = func(path, value string) {
		t.Helper()
		parts := strings.Split(path, "/")
		if _, err := cr.PutSecret(ctx, tok, core.PutSecretInput{Project: parts[0], Env: parts[1], Name: parts[2], Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	pm.store = db.Rotations()
	pm.m = rotate.NewMachine(pm.store, pm.secrets, map[string]rotate.Rotator{"postgres": &Rotator{Secrets: pm.secrets}})
	pm.m.Now = clock
	pm.m.Alert = func(_ context.Context, r *rotate.Rotation) { pm.alerts = append(pm.alerts, *r) }
	return pm
}

// rotate puts a policy for path and rotates it now.
func (pm *pgMachine) rotate(t *testing.T, path string, config map[string]string) (*rotate.Rotation, error) {
	t.Helper()
	ctx := context.Background()
	if err := pm.store.PutPolicy(ctx, &rotate.Policy{Path: path, Every: 30 * 24 * time.Hour, Grace: time.Hour, Rotator: "postgres", Config: config}); err != nil {
		t.Fatal(err)
	}
	return pm.m.RotateNow(ctx, path, "test")
}

// Through the machine: a value naming a role the rotator does not manage
// ends its rotation at once (failed at revoke, the new value CURRENT), a
// permanent failure with one alert and no retry; the error and alert name
// the role and hold no password; the role keeps its login.
func TestRevokeRefusalEndsTheRotation(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	super := superConn(t, c)
	guardRoles(t, super)

	pm := newPGMachine(t)
	pm.put("p/e/ADMIN", c.URL("rg_admin", "rg_admin-pw", "postgres"))
	const planted = "planted-password-123"
	pm.put("p/e/DB", c.URL("rg_other", planted, "postgres")) // a writer's value naming another role
	base := "postgres://" + c.Host + ":" + strconv.Itoa(c.Port) + "/postgres?sslmode=disable"
	r, err := pm.rotate(t, "p/e/DB", map[string]string{"dsn_secret": "p/e/ADMIN", "role": "rg", "url": base})
	if err != nil || r.Step != rotate.StepRevoke {
		t.Fatalf("RotateNow: got step %v, %v; want revoke (grace)", r, err)
	}
	pm.now = pm.now.Add(time.Hour) // grace ends
	if r, err = pm.m.Advance(ctx, r.ID); err == nil || !rotate.IsPermanent(err) {
		t.Fatalf("Advance at the end of grace: got %v; want the permanent refusal", err)
	}
	for i := 0; i < 4; i++ { // no retry comes, however long it waits
		pm.now = pm.now.Add(24 * time.Hour)
		if err := pm.m.Resume(ctx); err != nil {
			t.Fatalf("Resume %d: %v", i, err)
		}
	}
	if r, err = pm.store.Rotation(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if r.Step != rotate.StepFailed || r.FinishedAt.IsZero() || r.Attempt != 1 || len(pm.alerts) != 1 || pm.m.Failures.Load() != 1 {
		t.Fatalf("rotation: got step %s, attempt %d, %d alerts, %d failures; want failed (ended) at the first attempt, one alert",
			r.Step, r.Attempt, len(pm.alerts), pm.m.Failures.Load())
	}
	if !strings.Contains(r.Error, `"rg_other"`) || !strings.HasSuffix(r.Error, "(attempt 1, permanent: not retried)") || pm.alerts[0].Error != r.Error {
		t.Fatalf("rotation error %q, alert %q: want both to name the refused role and say permanent", r.Error, pm.alerts[0].Error)
	}
	cur, err := pm.secrets.Labeled(ctx, "p/e/DB", rotate.LabelCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if prev, err := pm.secrets.Labeled(ctx, "p/e/DB", rotate.LabelPrevious); err != nil || prev.Number != r.CurrentVersion {
		t.Fatalf("PREVIOUS: got %v, %v; want version %d kept (not revoked)", prev, err, r.CurrentVersion)
	}
	pc, _ := parsePGConfig(r.Config)
	newCred, err := pc.decode(cur.Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{pm.alerts[0].Error, r.Error} {
		for _, pw := range []string{planted, newCred.Password, "rg_admin-pw", "rg_other-pw"} {
			if strings.Contains(e, pw) {
				t.Fatalf("rotation error or alert %q holds a password", e)
			}
		}
	}
	if err := pgLogin(ctx, pc.connURL(newCred), newCred.User); err != nil {
		t.Fatalf("login with the new CURRENT value: %v", err)
	}
	if err := pgLogin(ctx, c.URL("rg_other", "rg_other-pw", "postgres"), "rg_other"); err != nil {
		t.Fatalf("login as rg_other after the rotation: %v; want success", err)
	}
}
