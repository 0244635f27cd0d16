package rotate_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	. "github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/seal"
)

// gatedUpstream is an upstream whose Create waits for a gate, so a test
// holds one runner inside a step while another tries the same rotation.
type gatedUpstream struct {
	*upstream
	entered chan struct{} // one send per Create that started
	gate    chan struct{} // closed to let Creates finish
}

func (u *gatedUpstream) Create(ctx context.Context, req *Request) ([]byte, error) {
	u.entered <- struct{}{}
	<-u.gate
	return u.upstream.Create(ctx, req)
}

// pgMachine is one server's machine over a PostgreSQL database, with the
// store's claims, as cmd/tokenward wires it.
func pgMachine(t *testing.T, url string, key []byte, up Rotator) (*Machine, *core.Core, *postgres.DB) {
	t.Helper()
	db := postgres.NewDB(url)
	if err := db.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := core.New(t.Context(), db, key)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := c.RotationSecrets()
	if err != nil {
		t.Fatal(err)
	}
	m := NewMachine(db.Rotations(), secrets, map[string]Rotator{"up": up})
	m.Claims = db.Rotations()
	return m, c, db
}

// TestClaimOneRunnerAcrossServers: two servers advance one rotation at
// once — the leader's scheduler and a rotate-now elsewhere. The second
// waits for the first's claim and then reports where it got to: the
// rotator creates one value, the secret gets one new version, and the
// rotation finishes once.
func TestClaimOneRunnerAcrossServers(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	key := seal.NewKey()
	ctx := t.Context()
	var admin string
	{
		db := postgres.NewDB(url)
		if err := db.Open(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if admin, err = core.Init(ctx, db, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	up := &gatedUpstream{upstream: newUpstream("v1"), entered: make(chan struct{}, 2), gate: make(chan struct{})}
	a, ca, _ := pgMachine(t, url, key, up)
	b, _, _ := pgMachine(t, url, key, up)
	tok, err := ca.Authenticate(ctx, admin, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.CreateProject(ctx, tok, "app", []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.PutSecret(ctx, tok, core.PutSecretInput{Project: "app", Env: "prod", Name: "KEY", Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.PutPolicy(ctx, &Policy{Path: "app/prod/KEY", Every: 24 * time.Hour, Rotator: "up"}); err != nil {
		t.Fatal(err)
	}
	p, err := a.Store.Policy(ctx, "app/prod/KEY")
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Start(ctx, p, "scheduled")
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		r   *Rotation
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { r, err := a.Advance(ctx, r.ID); first <- result{r, err} }()
	<-up.entered // the first runner is inside create
	go func() { r, err := b.Advance(ctx, r.ID); second <- result{r, err} }()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitClaimWaiter(t, conn)
	close(up.gate)
	for name, ch := range map[string]chan result{"first": first, "second": second} {
		res := <-ch
		if res.err != nil {
			t.Fatalf("%s runner: %v", name, res.err)
		}
		if res.r.Step != StepDone || res.r.ID != r.ID {
			t.Errorf("%s runner: got rotation %s at %s; want %s done", name, res.r.ID, res.r.Step, r.ID)
		}
	}
	select {
	case <-up.entered:
		t.Fatal("the second runner ran create as well")
	default:
	}
	if up.creates != 1 {
		t.Errorf("creates: got %d; want 1", up.creates)
	}
	hist, err := ca.SecretHistory(ctx, tok, "app", "prod", "KEY")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Errorf("versions: got %d; want 2 (the first and the rotation's)", len(hist))
	}
}

// waitClaimWaiter waits until a session waits for a rotation claim,
// failing after a generous deadline.
func waitClaimWaiter(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = x'74777263'::int::oid AND objsubid = 2`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no runner waits for the rotation's claim")
		}
	}
}
