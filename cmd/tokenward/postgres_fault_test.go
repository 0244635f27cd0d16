//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// faultClient drives the API over loopback and records every answer.
type faultClient struct {
	addr, token string
	http        *http.Client
}

type faultAnswer struct {
	status  int
	body    []byte
	elapsed time.Duration
	started time.Time
	err     error
}

func (c *faultClient) do(method, path string, body any) faultAnswer {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.addr+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	a := faultAnswer{started: time.Now()}
	resp, err := c.http.Do(req)
	a.elapsed = time.Since(a.started)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	a.body, a.err = io.ReadAll(resp.Body)
	return a
}

// ackedWrite is a write the server answered 2xx: it must be readable after
// any fault.
type ackedWrite struct {
	name, value string
	version     int
}

// TestPostgresRestartUnderLoad stops PostgreSQL (pg_ctl stop -m fast)
// under a load of secret writes and reads from a few clients, and starts it
// again: while it is down every request is answered at once with 503 (not
// 500, not a hang), /v1/ready says 503 while /v1/health says 200; after it
// returns the same server process serves again by itself, every
// acknowledged write is there with its audit entry, the audit chain
// verifies, and the server log holds no value, token or password. Last,
// a server whose lock a migration took while its lock connection was down
// stops with an error. Each request's audit entry is committed to the
// database before its answer (the only --audit-sync on PostgreSQL).
func TestPostgresRestartUnderLoad(t *testing.T) {
	pg := pgtest.Start(t) // a cluster of its own: this test stops it
	restartUnderLoad(t, pg)
}

func restartUnderLoad(t *testing.T, pg *pgtest.Cluster) {
	url := pg.NewDatabase(t)
	e := newPGEnv(t, url)
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")

	c := &faultClient{addr: e.addr, token: e.token, http: &http.Client{Timeout: 10 * time.Second}}
	const workers, canary = 4, "fault-canary-value-"
	var (
		mu      sync.Mutex
		acked   []ackedWrite
		answers []faultAnswer
		phase   = "up"
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	downAt := time.Time{} // when pg_ctl stop returned
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("KEY_%d", w)
			for i := 0; i < 5000; i++ { // bounded; stop ends it sooner
				select {
				case <-stop:
					return
				default:
				}
				value := fmt.Sprintf("%s%d-%d", canary, w, i)
				a := c.do("PUT", "/v1/secrets/payments/prod/"+name, map[string]any{"value": value})
				var meta struct {
					Version int `json:"version"`
				}
				mu.Lock()
				answers = append(answers, a)
				if a.err == nil && a.status == 200 && json.Unmarshal(a.body, &meta) == nil {
					acked = append(acked, ackedWrite{name, value, meta.Version})
				}
				mu.Unlock()
				r := c.do("GET", "/v1/secrets/payments/prod/"+name, nil)
				mu.Lock()
				answers = append(answers, r)
				mu.Unlock()
				if phase := func() string { mu.Lock(); defer mu.Unlock(); return phase }(); phase == "down" {
					time.Sleep(20 * time.Millisecond) // do not spin while every answer is 503
				}
			}
		})
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("waiting for %s: gave up\nserver log:\n%s", what, e.logs)
			}
		}
	}
	waitUntil("writes before the fault", func() bool { return ackedCount() >= 20 })

	// PostgreSQL goes down.
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	phase, downAt = "down", time.Now()
	before := len(acked)
	mu.Unlock()
	time.Sleep(3 * time.Second)
	for _, path := range []string{"/v1/ready", "/readyz"} {
		if a := c.do("GET", path, nil); a.status != 503 || !strings.Contains(string(a.body), `"reason":"database unreachable"`) || a.elapsed > 2*time.Second {
			t.Errorf("%s while PostgreSQL is down: got %d %s after %s; want 503 database unreachable at once", path, a.status, a.body, a.elapsed)
		}
	}
	for _, path := range []string{"/v1/health", "/healthz"} {
		if a := c.do("GET", path, nil); a.status != 200 {
			t.Errorf("%s while PostgreSQL is down: got %d %s; want 200", path, a.status, a.body)
		}
	}
	mu.Lock()
	var down []faultAnswer
	for _, a := range answers {
		if a.started.After(downAt) {
			down = append(down, a)
		}
	}
	ackedWhileDown := len(acked) - before
	mu.Unlock()

	// PostgreSQL comes back; the same server process serves again.
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	mu.Lock()
	phase = "up"
	mu.Unlock()
	waitUntil("/v1/ready 200", func() bool { return c.do("GET", "/v1/ready", nil).status == 200 })
	readyAfter := time.Since(upAt)
	n := ackedCount()
	waitUntil("writes after the fault", func() bool { return ackedCount() >= n+20 })
	writingAfter := time.Since(upAt)
	// The server lock is taken again at its next check (every second).
	waitUntil("the server lock taken again", func() bool { return strings.Contains(e.logs.String(), "server lock taken again") })
	close(stop)
	wg.Wait()

	// While it was down: 503s, each at once.
	var maxDown time.Duration
	statuses, byDatabase := map[int]int{}, 0
	for _, a := range down {
		if a.err != nil {
			t.Fatalf("a request while PostgreSQL was down failed without an answer after %s: %v", a.elapsed, a.err)
		}
		statuses[a.status]++
		if !strings.Contains(string(a.body), "the audit log cannot record") {
			byDatabase++
		}
		maxDown = max(maxDown, a.elapsed)
		if a.status != 503 {
			t.Errorf("while PostgreSQL was down: got %d %s; want 503", a.status, a.body)
		}
		if !strings.Contains(string(a.body), "database unavailable; retry") {
			t.Errorf("while PostgreSQL was down: got %s; want a message naming the database", a.body)
		}
	}
	if len(down) < workers {
		t.Fatalf("got %d requests while PostgreSQL was down; want several", len(down))
	}
	if maxDown > 2*time.Second {
		t.Errorf("slowest answer while PostgreSQL was down: %s; want within 2s", maxDown)
	}
	if ackedWhileDown != 0 {
		t.Errorf("%d writes acknowledged after PostgreSQL stopped; want none", ackedWhileDown)
	}
	mu.Lock()
	for _, a := range answers {
		if a.status == 500 || a.err != nil {
			t.Errorf("got %d %v %s; want no 500 and no failed request at any time", a.status, a.err, a.body)
		}
	}
	mu.Unlock()
	t.Logf("PostgreSQL down %s: %d requests, statuses %v (%d refused by a store call, the rest by the audit hook, all \"database unavailable; retry\"), slowest answer %s; ready again %s after it started, writes again after %s; %d writes acknowledged",
		upAt.Sub(downAt).Round(time.Millisecond), len(down), statuses, byDatabase, maxDown.Round(time.Millisecond), readyAfter.Round(time.Millisecond), writingAfter.Round(time.Millisecond), len(acked))

	// Every acknowledged write is there, with its audit entry.
	checkAcked(t, e, acked)
	if out := e.mustCLI("", "audit", "verify"); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify: got %q; want the chain verified", out)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = 'secret.write' AND status = 200`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	// Every acknowledged write has its entry. A write whose commit reached
	// the database as the connection broke is refused (503) and recorded
	// all the same: more entries than acknowledgements is no loss.
	if stored < len(acked) {
		t.Errorf("audit entries of acknowledged writes: got %d; want at least %d", stored, len(acked))
	}

	// The server said what happened, and nothing secret.
	logs := e.logs.String()
	for _, want := range []string{"database unreachable"} {
		if !strings.Contains(logs, want) {
			t.Errorf("server log: want %q", want)
		}
	}
	// The outage is logged where it is seen, not once per refused request.
	if n := strings.Count(logs, "level=ERROR"); n > 10 {
		t.Errorf("server log: got %d error lines; want the outage logged a few times, not per request", n)
	}
	for _, secret := range []string{canary, pg.Password, e.token} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log holds a secret (%.12q...)", secret)
		}
	}
	select {
	case err := <-e.exit:
		t.Fatalf("the server exited: %v", err)
	default:
	}

	// Another session takes the server lock exclusively, as tokenward
	// migrate does, while this server's lock connection is gone (its
	// session ended, the other one waiting): the server stops rather than
	// serve beside a migration.
	other, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	took := make(chan error, 1)
	go func() {
		_, err := other.Exec(context.Background(), `SELECT pg_advisory_lock(x'74777365727665'::bigint)`)
		took <- err
	}()
	var holder int64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE NOT granted AND pid = $1), coalesce(min(pid) FILTER (WHERE granted), 0)
			FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = 7632755 AND objid = 1702000229 AND objsubid = 1`, // the server lock, not the leader's
			int64(other.PgConn().PID())).Scan(&waiting, &holder); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 && holder != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other session does not wait for the server lock")
		}
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, holder); err != nil {
		t.Fatal(err)
	}
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	if err := e.waitExit(); err == nil || !strings.Contains(e.logs.String(), "tokenward migrate took this database") {
		t.Errorf("server after losing its lock: got exit %v; want an error exit naming the migration\n%s", err, e.logs)
	}
}
