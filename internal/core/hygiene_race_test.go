package core_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
)

// useBetween is the monitor store of a hygiene run that lets a token be
// used after the run built its report and before it acts on it: the
// report is built before the notices are read.
type useBetween struct {
	core.MonitorStore
	use func(ctx context.Context)
}

func (s *useBetween) StaleNotices(ctx context.Context) (map[string]time.Time, error) {
	if s.use != nil {
		s.use(ctx)
		s.use = nil
	}
	return s.MonitorStore.StaleNotices(ctx)
}

// TestHygieneKeepsATokenUsedAfterItsReport: a stale token, notified, its
// notice period over, is used (a pipeline woke up) after the hygiene job
// listed it as stale and before the job revokes it. The use came first, so
// the token is kept, its notice cleared as for any used token, and no
// revocation is audited. The use lands either in the store (another
// server wrote its batch of last uses) or in this server's pending batch.
func TestHygieneKeepsATokenUsedAfterItsReport(t *testing.T) {
	for _, where := range []string{"store", "this server"} {
		t.Run(where, func(t *testing.T) {
			f := mustFixture(t)
			withMonitoring(t, f)
			ctx := t.Context()
			clk := &clock{time.Now().UTC()}
			f.core.Now = clk.now
			var mu sync.Mutex
			var revokes []string
			f.core.Monitoring.Record = func(ctx context.Context, e *tokenward.AuditEntry) error {
				mu.Lock()
				defer mu.Unlock()
				if e.Action == "token.revoke" {
					revokes = append(revokes, e.Resource)
				}
				return nil
			}
			f.core.Monitoring.StalePolicy = monitor.StalePolicy{NoticePeriod: 14 * 24 * time.Hour, Revoke: true}
			tok, raw, err := f.core.CreateToken(ctx, f.admin, core.CreateTokenInput{Name: "nightly", Kind: tokenward.TokenService,
				Grants: tokenward.Grants{tokenward.MustParseGrant("read:payments/prod/*")}})
			if err != nil {
				t.Fatal(err)
			}
			// The admin token stays in use, so only the pipeline's is stale.
			keepAdmin := func() {
				t.Helper()
				if err := f.db.TouchTokens(ctx, []tokenward.TokenUse{{ID: f.admin.ID, At: clk.now(), IP: "127.0.0.1"}}); err != nil {
					t.Fatal(err)
				}
			}
			clk.t = clk.t.Add(31 * 24 * time.Hour)
			keepAdmin()
			if res, err := f.core.RunHygiene(ctx); err != nil || res.Notified != 1 {
				t.Fatalf("first run: got %+v, %v; want the pipeline's token notified", res, err)
			}
			clk.t = clk.t.Add(15 * 24 * time.Hour)
			keepAdmin()
			f.core.Monitoring.Store = &useBetween{MonitorStore: f.db, use: func(ctx context.Context) {
				switch where {
				case "store":
					if err := f.db.TouchTokens(ctx, []tokenward.TokenUse{{ID: tok.ID, At: clk.now(), IP: "10.1.2.3"}}); err != nil {
						t.Error(err)
					}
				default:
					if _, err := f.core.Authenticate(ctx, raw, "10.1.2.3"); err != nil {
						t.Error(err)
					}
				}
			}}
			res, err := f.core.RunHygiene(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Revoked != 0 || res.Cleared != 1 {
				t.Errorf("run after the notice period, token used meanwhile: got %+v; want none revoked, one notice cleared", res)
			}
			got, err := f.db.Token(ctx, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.RevokedAt.IsZero() {
				t.Errorf("token used before the revocation: got revoked at %s; want active", got.RevokedAt)
			}
			if _, err := f.core.Authenticate(ctx, raw, "10.1.2.3"); err != nil {
				t.Errorf("the pipeline's next request: got %v; want accepted", err)
			}
			notices, err := f.db.StaleNotices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := notices[tok.ID]; ok {
				t.Errorf("got the stale notice kept; want it cleared (the token was used)")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(revokes) != 0 {
				t.Errorf("got revocations audited %v; want none", revokes)
			}
		})
	}
}
