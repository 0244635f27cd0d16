package pgrotate

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/pgrole"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
)

// A statement on the admin connection that PostgreSQL refuses for good
// (its SQLSTATE says so) ends the rotation at its first attempt, rolled
// back with one alert; a refusal that can pass (a standby, a server that
// cannot be reached) is retried, and the retry succeeds once it can.
func TestAdminStatementRefusals(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	super := superConn(t, c)
	for _, s := range []string{
		"DROP ROLE IF EXISTS tw_plain", "CREATE ROLE tw_plain LOGIN PASSWORD 'tw_plain-pw'", // no CREATEROLE
		"DROP ROLE IF EXISTS tw_nogroup_a", "DROP ROLE IF EXISTS tw_nogroup_b", "DROP ROLE IF EXISTS tw_nogroup",
		"DROP ROLE IF EXISTS tw_ro_a", "DROP ROLE IF EXISTS tw_ro_b", "DROP ROLE IF EXISTS tw_ro", "CREATE ROLE tw_ro NOLOGIN",
		"DROP ROLE IF EXISTS tw_priv", "CREATE ROLE tw_priv NOLOGIN",
		"DROP ROLE IF EXISTS tw_pg", "CREATE ROLE tw_pg NOLOGIN",
	} {
		if _, err := super.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	base := "postgres://" + c.Host + ":" + strconv.Itoa(c.Port) + "/postgres?sslmode=disable"
	superURL := c.URL(c.User, c.Password, "postgres")
	// A session that may not write, as on a standby.
	sep := "?"
	if strings.Contains(superURL, "?") {
		sep = "&"
	}
	readOnly := superURL + sep + "options=-c%20default_transaction_read_only%3Don"
	tests := []struct {
		name      string
		admin     string // the admin DSN
		group     string
		roles     string
		wantState string // SQLSTATE in the error, or a phrase
		permanent bool
	}{
		{"no CREATEROLE (42501)", c.URL("tw_plain", "tw_plain-pw", "postgres"), "tw_priv", "", "42501", true},
		{"no such group role (42704)", superURL, "tw_nogroup", "", "42704", true},
		{"reserved role name (42939)", superURL, "tw_pg", "pg_tw_a,pg_tw_b", "42939", true},
		{"read-only, as a standby (25006)", readOnly, "tw_ro", "", "25006", false},
		{"server not reachable", "postgres://" + c.User + ":x@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", "tw_ro", "", "cannot connect", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pm := newPGMachine(t)
			pm.put("p/e/ADMIN", tt.admin)
			cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": tt.group, "url": base}
			if tt.roles != "" {
				cfg["roles"] = tt.roles
			}
			pc, err := parsePGConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			initial := string(pc.encode(pgCredential{User: pc.roles[1], Password: "initial-pw"}))
			pm.put("p/e/DB", initial)
			r, err := pm.rotate(t, "p/e/DB", cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantState) || rotate.IsPermanent(err) != tt.permanent {
				t.Fatalf("RotateNow: got %v (permanent %v); want a failure with %s, permanent %v", err, rotate.IsPermanent(err), tt.wantState, tt.permanent)
			}
			if len(pm.alerts) != 1 || r.Attempt != 1 || pm.alerts[0].Error != r.Error {
				t.Fatalf("got %d alerts, attempt %d; want one alert for the first attempt", len(pm.alerts), r.Attempt)
			}
			if tt.permanent {
				if r.Step != rotate.StepFailed || !r.NextAt.IsZero() || !strings.HasSuffix(r.Error, "(attempt 1, permanent: not retried)") {
					t.Fatalf("got step %s, next %v, error %q; want failed at once, permanent", r.Step, r.NextAt, r.Error)
				}
			} else if r.Step != rotate.StepSet || r.NextAt.IsZero() || strings.Contains(r.Error, "permanent") {
				t.Fatalf("got step %s, next %v, error %q; want set again after backoff", r.Step, r.NextAt, r.Error)
			}
			if cur, err := pm.secrets.Labeled(ctx, "p/e/DB", rotate.LabelCurrent); err != nil || string(cur.Value) != initial {
				t.Fatalf("CURRENT: got %v; want the initial value untouched", err)
			}
			_, err = pm.secrets.Labeled(ctx, "p/e/DB", rotate.LabelPending)
			if gotPending := err == nil; gotPending == tt.permanent {
				t.Fatalf("PENDING present %v; want it dropped only when the rotation ended", gotPending)
			}
			if tt.permanent {
				return
			}
			// The operator points the admin DSN at the primary: the retry
			// after backoff succeeds.
			pm.put("p/e/ADMIN", superURL)
			pm.now = pm.now.Add(time.Minute)
			if r, err = pm.m.Advance(ctx, r.ID); err != nil || r.Step != rotate.StepRevoke {
				t.Fatalf("retry: got %v, %v; want the rotation finished (grace)", r, err)
			}
			if _, err := super.Exec(ctx, "DROP ROLE IF EXISTS "+pgrole.QuoteIdent(pc.roles[0])); err != nil {
				t.Fatal(err)
			}
		})
	}
}
