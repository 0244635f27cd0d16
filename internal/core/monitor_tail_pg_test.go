package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/seal"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// syncLog is a log buffer several goroutines write.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var hookSecret = []byte("tail-test-hook-secret-0123456789")

// hookReceiver counts the webhook deliveries of every server: events by
// type and resource, alerts by rule and token.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{counts: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			Type, Resource string
			Anomaly        struct { // alerts
				Rule    string
				TokenID string `json:"token_id"`
			}
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if req.URL.Path == "/events" {
			h.counts["event "+body.Type+" "+body.Resource]++
		} else {
			h.counts["alert "+body.Anomaly.Rule+" "+body.Anomaly.TokenID]++
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[key]
}

// initPG makes a database on the shared cluster, initialised, and returns
// its URL, master key and admin token.
func initPG(t *testing.T) (url string, key []byte, admin string) {
	t.Helper()
	url, key = pgtest.Shared(t).NewDatabase(t), seal.NewKey()
	db := postgres.NewDB(url)
	if err := db.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	admin, err := core.Init(t.Context(), db, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return url, key, admin
}

// tailServer is one of several servers on one PostgreSQL database, wired
// as cmd/tokenward wires them: audit entries appended to the shared chain,
// the monitor fed by the tail.
type tailServer struct {
	db   *postgres.DB
	core *core.Core
	sub  *monitor.Subscription
}

func newTailServer(t *testing.T, url string, key []byte, log *syncLog, hooks *hookReceiver) *tailServer {
	t.Helper()
	ctx := t.Context()
	db := postgres.NewDB(url)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := core.New(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.New(monitor.Config{Policy: map[monitor.RuleID]monitor.Action{monitor.RuleDeniedBurst: monitor.ActionSuspend}})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sender := monitor.NewSender(logger)
	events := monitor.NewEvents(sender, []monitor.Webhook{{URL: hooks.URL + "/events", Format: monitor.FormatSigned, Secret: hookSecret}}, logger)
	if err := events.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close(context.Background()) })
	alerter := &monitor.Alerter{Sender: sender, Hooks: []monitor.Webhook{{URL: hooks.URL + "/alerts", Format: monitor.FormatSigned, Secret: hookSecret}}}
	sub, err := events.Subscribe(64)
	if err != nil {
		t.Fatal(err)
	}
	c.Monitoring = &core.Monitoring{Store: db, Monitor: mon, Events: events, Alerter: alerter, Logger: logger, Tail: core.NewAuditTail(db)}
	c.Monitoring.Record = func(ctx context.Context, e *tokenward.AuditEntry) error {
		if err := db.AppendChained(ctx, []*tokenward.AuditEntry{e}); err != nil {
			return err
		}
		c.ObserveAudit(ctx, e)
		return nil
	}
	if err := c.LoadMonitorState(ctx); err != nil {
		t.Fatal(err)
	}
	return &tailServer{db: db, core: c, sub: sub}
}

// deny records a refused read by tok on this server.
func (s *tailServer) deny(t *testing.T, tok *tokenward.Token, at time.Time) {
	t.Helper()
	e := &tokenward.AuditEntry{Time: at, RequestID: fmt.Sprintf("req-%d", at.UnixNano()), TokenID: tok.ID, TokenName: tok.Name,
		Action: "secret.read", Resource: "payments/prod/DB_PASSWORD", Outcome: tokenward.OutcomeDenied, Status: 403, SourceIP: "203.0.113.7"}
	if err := s.core.Monitoring.Record(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}

func (s *tailServer) poll(t *testing.T) {
	t.Helper()
	if _, err := s.core.PollAuditTail(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// events drains the events this server's subscriber has received.
func (s *tailServer) events() []monitor.Event {
	var out []monitor.Event
	for {
		select {
		case e, ok := <-s.sub.C:
			if !ok {
				return out
			}
			out = append(out, e)
		default:
			return out
		}
	}
}

func anomaliesOf(t *testing.T, db *postgres.DB, tokenID string, rule monitor.RuleID) int {
	t.Helper()
	all, err := db.Anomalies(t.Context(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range all {
		if r.TokenID == tokenID && r.Rule == rule {
			n++
		}
	}
	return n
}

func suspensionsOf(t *testing.T, db *postgres.DB, tokenID string) int {
	t.Helper()
	es, err := db.SearchAudit(t.Context(), audit.Query{Action: "token.suspend", Resource: "token:" + tokenID})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func requestsOf(t *testing.T, s *tailServer, tokenID string) int64 {
	t.Helper()
	u, _ := s.core.Monitoring.Monitor.Usage(tokenID)
	return u.Requests
}

// TestAuditTailServersAreOne: three servers on one database, each tailing
// the shared audit table. Denied requests spread over them (each alone
// under the rule) are one burst: one anomaly, stored by the leader, one
// suspension, seen by every server; a leadership handover neither counts
// an entry twice nor loses one, nor acts twice on what the old leader
// acted on; a server starting from the snapshot resumes at its cursor.
func TestAuditTailServersAreOne(t *testing.T) {
	url, key, admin := initPG(t)
	ctx := t.Context()
	var log syncLog
	hooks := newHookReceiver(t)
	servers := []*tailServer{newTailServer(t, url, key, &log, hooks), newTailServer(t, url, key, &log, hooks), newTailServer(t, url, key, &log, hooks)}
	a, b, c := servers[0], servers[1], servers[2]
	adminTok, err := a.core.Authenticate(ctx, admin, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.core.CreateProject(ctx, adminTok, "payments", []string{"prod", "dev"}); err != nil {
		t.Fatal(err)
	}
	grants, err := tokenward.ParseGrants([]string{"read:payments/dev/*"})
	if err != nil {
		t.Fatal(err)
	}
	var raws []string
	ids := map[string]string{} // name → id
	mk := func(name string) *tokenward.Token {
		tok, raw, err := a.core.CreateToken(ctx, adminTok, core.CreateTokenInput{Name: name, Grants: grants})
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		ids[name] = tok.ID
		return tok
	}
	pollAll := func(t *testing.T) {
		t.Helper()
		for _, s := range servers {
			s.poll(t)
		}
	}
	top := t
	a.core.StartActing(ctx) // a leads
	base := time.Now().UTC()

	t.Run("a burst spread over three servers is one burst", func(t *testing.T) {
		prober := mk("prober")
		for i := range 12 {
			servers[i%3].deny(t, prober, base.Add(time.Duration(i)*time.Second))
		}
		// The others read first: they see the burst, and leave it to a.
		b.poll(t)
		c.poll(t)
		if got := anomaliesOf(t, a.db, prober.ID, monitor.RuleDeniedBurst); got != 0 {
			t.Fatalf("anomalies stored by servers that do not lead: got %d; want 0", got)
		}
		a.poll(t)
		pollAll(t) // everyone reads the suspension
		pollAll(t)
		if got := anomaliesOf(t, a.db, prober.ID, monitor.RuleDeniedBurst); got != 1 {
			t.Errorf("denied_burst anomalies: got %d; want 1", got)
		}
		if got := suspensionsOf(t, a.db, prober.ID); got != 1 {
			t.Errorf("suspensions: got %d; want 1", got)
		}
		tok, err := a.db.Token(ctx, prober.ID)
		if err != nil || tok.RevokedAt.IsZero() {
			t.Errorf("prober after the burst: revoked at %v (err %v); want revoked", tok.RevokedAt, err)
		}
		for i, s := range servers {
			if got := requestsOf(t, s, prober.ID); got != 12 {
				t.Errorf("server %d counts %d requests of the prober; want 12", i, got)
			}
			var suspended int
			for _, e := range s.events() {
				if e.Type == monitor.EventTokenSuspended && e.Resource == "token:"+prober.ID {
					suspended++
					if e.Reason != string(monitor.RuleDeniedBurst) {
						t.Errorf("server %d: token.suspended reason %q; want %q", i, e.Reason, monitor.RuleDeniedBurst)
					}
				}
			}
			if suspended != 1 {
				t.Errorf("server %d: token.suspended events to its subscriber: got %d; want 1", i, suspended)
			}
		}
	})

	t.Run("handover keeps the cursor", func(t *testing.T) {
		// What the old leader acted on and the new one had not read yet is
		// not acted on again.
		acted := mk("acted-by-old-leader")
		for i := range 10 {
			a.deny(t, acted, base.Add(time.Duration(i)*time.Second))
		}
		a.poll(t)
		// A burst begun before the handover and finished after it.
		across := mk("across-handover")
		for i := range 6 {
			c.deny(t, across, base.Add(time.Duration(i)*time.Second))
		}
		c.poll(t)
		if err := a.core.StopActing(ctx, false); err != nil { // a steps down: it reads to the head and saves
			t.Fatal(err)
		}
		b.core.StartActing(ctx) // b leads
		pollAll(t)
		if got := anomaliesOf(t, a.db, acted.ID, monitor.RuleDeniedBurst); got != 1 {
			t.Errorf("anomalies of the burst the old leader acted on: got %d; want 1", got)
		}
		if got := suspensionsOf(t, a.db, acted.ID); got != 1 {
			t.Errorf("suspensions of the burst the old leader acted on: got %d; want 1", got)
		}

		// A server started now resumes from the snapshot a saved.
		d := newTailServer(top, url, key, &log, hooks) // lives to the end of the test
		servers = append(servers, d)
		d.poll(t)
		if got, want := requestsOf(t, d, across.ID), int64(6); got != want {
			t.Errorf("a starting server counts %d requests of a token used before it started; want %d (the snapshot's, none twice)", got, want)
		}

		for i := 6; i < 12; i++ {
			servers[i%3].deny(t, across, base.Add(time.Duration(i)*time.Second))
		}
		pollAll(t)
		pollAll(t)
		if got := anomaliesOf(t, a.db, across.ID, monitor.RuleDeniedBurst); got != 1 {
			t.Errorf("anomalies of the burst across the handover: got %d; want 1", got)
		}
		if got := suspensionsOf(t, a.db, across.ID); got != 1 {
			t.Errorf("suspensions of the burst across the handover: got %d; want 1", got)
		}
		for i, s := range servers {
			if got, want := requestsOf(t, s, across.ID), int64(12); got != want {
				t.Errorf("server %d counts %d requests across the handover; want %d", i, got, want)
			}
		}
	})

	t.Run("change events reach every subscriber, the webhooks once", func(t *testing.T) {
		for _, s := range servers {
			s.events() // drop what came before
		}
		e := &tokenward.AuditEntry{Time: base, RequestID: "req-write", TokenID: adminTok.ID, TokenName: adminTok.Name,
			Action: "secret.write", Resource: "payments/prod/API_KEY", Outcome: tokenward.OutcomeAllowed, Status: 200,
			Meta: map[string]string{"version": "2"}}
		if err := c.core.Monitoring.Record(ctx, e); err != nil { // on a server that does not lead
			t.Fatal(err)
		}
		pollAll(t)
		ids := map[string]bool{}
		for i, s := range servers {
			var got []string
			for _, e := range s.events() {
				got = append(got, string(e.Type)+" "+e.Resource)
				ids[e.ID] = true
			}
			if want := "secret.updated payments/prod/API_KEY"; len(got) != 1 || got[0] != want {
				t.Errorf("server %d's subscriber: got %q; want [%q]", i, got, want)
			}
		}
		if len(ids) != 1 {
			t.Errorf("event ids of the one change on %d servers: got %v; want one id", len(servers), ids)
		}
	})

	t.Run("webhooks and alerts are sent once, by the leader", func(t *testing.T) {
		for _, s := range servers {
			if err := s.core.Monitoring.Events.Close(ctx); err != nil { // delivers what is queued
				t.Fatal(err)
			}
			s.core.Monitoring.Wait()
		}
		for _, key := range []string{
			"event secret.updated payments/prod/API_KEY",
			"event token.suspended token:" + ids["prober"],
			"event token.suspended token:" + ids["acted-by-old-leader"],
			"event token.suspended token:" + ids["across-handover"],
			"alert denied_burst " + ids["prober"],
			"alert denied_burst " + ids["acted-by-old-leader"],
			"alert denied_burst " + ids["across-handover"],
		} {
			if got := hooks.count(key); got != 1 {
				t.Errorf("deliveries of %q: got %d; want 1", key, got)
			}
		}
	})

	t.Run("no token reaches a log", func(t *testing.T) {
		logs := log.String()
		if !strings.Contains(logs, "anomaly") {
			t.Fatalf("the servers logged no anomaly; the check below would prove nothing:\n%s", logs)
		}
		for _, raw := range append(raws, admin) {
			if strings.Contains(logs, raw) {
				t.Errorf("a token reached the log")
			}
		}
	})
}

// TestAuditTailStartsAtHead: a server starting without a saved snapshot
// counts only what is recorded after it started.
func TestAuditTailStartsAtHead(t *testing.T) {
	url, key, _ := initPG(t)
	var log syncLog
	hooks := newHookReceiver(t)
	a := newTailServer(t, url, key, &log, hooks)
	tok := &tokenward.Token{ID: "tok_early", Name: "early"}
	now := time.Now().UTC()
	a.deny(t, tok, now)
	a.deny(t, tok, now.Add(time.Second))
	b := newTailServer(t, url, key, &log, hooks)
	b.deny(t, tok, now.Add(2*time.Second))
	a.poll(t)
	b.poll(t)
	for _, tc := range []struct {
		name string
		s    *tailServer
		want int64
	}{{"started before", a, 3}, {"started after two", b, 1}} {
		if got := requestsOf(t, tc.s, tok.ID); got != tc.want {
			t.Errorf("%s: counts %d requests; want %d", tc.name, got, tc.want)
		}
	}
}

// TestLeadAuditTailEnds: how a leader's anomaly actions end depends on
// why its leadership ended. Stepping down (the lock is still this
// server's until it resigns) reads to the head a last time, acting, and
// saves the snapshot with its cursor for the next leader. Losing the lock
// (postgres.ErrLeadershipLost: another server may lead already) acts on
// nothing more and saves nothing, so it neither suspends a second time
// what the new leader acts on nor puts its older cursor over the new
// leader's.
func TestLeadAuditTailEnds(t *testing.T) {
	tests := []struct {
		name      string
		cause     error // nil: resigned, or the server stops
		wantActed bool
	}{
		{"stepping down acts to the head and saves", nil, true},
		{"lost leadership neither acts nor saves", postgres.ErrLeadershipLost, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, key, admin := initPG(t)
			ctx := t.Context()
			var log syncLog
			a := newTailServer(t, url, key, &log, newHookReceiver(t))
			adminTok, err := a.core.Authenticate(ctx, admin, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.core.CreateProject(ctx, adminTok, "payments", []string{"prod"}); err != nil {
				t.Fatal(err)
			}
			grants, err := tokenward.ParseGrants([]string{"read:payments/prod/OTHER"})
			if err != nil {
				t.Fatal(err)
			}
			prober, _, err := a.core.CreateToken(ctx, adminTok, core.CreateTokenInput{Name: "prober", Grants: grants})
			if err != nil {
				t.Fatal(err)
			}

			leading, end := context.WithCancelCause(ctx)
			done := make(chan error, 1)
			go func() { done <- a.core.LeadAuditTail(leading, postgres.ErrLeadershipLost) }()
			// A burst the leader has not read yet when its leadership ends.
			base := time.Now().UTC()
			for i := range 12 {
				a.deny(t, prober, base.Add(time.Duration(i)*time.Second))
			}
			burstEnd, err := a.db.SearchAudit(ctx, audit.Query{Newest: true, Limit: 1})
			if err != nil || len(burstEnd) == 0 {
				t.Fatalf("head: %v", err)
			}
			end(tt.cause)
			if err := <-done; err != nil {
				t.Fatalf("LeadAuditTail: %v", err)
			}

			acted := 0
			if tt.wantActed {
				acted = 1
			}
			if got := anomaliesOf(t, a.db, prober.ID, monitor.RuleDeniedBurst); got != acted {
				t.Errorf("anomalies stored: got %d; want %d", got, acted)
			}
			if got := suspensionsOf(t, a.db, prober.ID); got != acted {
				t.Errorf("suspensions: got %d; want %d", got, acted)
			}
			snap, err := a.db.MonitorState(ctx)
			if !tt.wantActed {
				if tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
					t.Fatalf("snapshot after the leadership was lost: got %d bytes (err %v); want none saved", len(snap), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("snapshot after stepping down: %v", err)
			}
			if cur, err := monitor.SnapshotCursor(snap); err != nil || cur < burstEnd[0].Seq {
				t.Errorf("saved cursor: got %d (err %v); want at least the burst's end, %d", cur, err, burstEnd[0].Seq)
			}
		})
	}
}
