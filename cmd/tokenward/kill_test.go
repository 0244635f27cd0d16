//go:build !tokenward_client

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
)

// TestKillUnderMixedLoad kills the real server with SIGKILL at random
// moments (seeded; the seed is logged, TOKENWARD_FAULT_SEED repeats a run)
// under a mixed write load — secret writes, token creation and revocation,
// rotations started — on SQLite and on PostgreSQL, several times per
// install, and after each restart checks: every acknowledged write is
// there with its value; every version a secret lists opens, to a value
// some client sent (no version without its value); every acknowledged
// token works unless its revocation was acknowledged, every acknowledged
// revocation holds, and every listed token is whole (its grants and
// expiry as asked); the audit trail verifies; every rotation in flight at
// the kill resumes and ends done. No answer before a kill is a 500, and no
// value or token reaches the server log.
func TestKillUnderMixedLoad(t *testing.T) {
	slowFaults(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TOKENWARD_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TOKENWARD_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (TOKENWARD_FAULT_SEED=%d repeats the kill points)", seed, seed)
	t.Run("sqlite", func(t *testing.T) {
		killUnderLoad(t, newRotEnv(t), rand.New(rand.NewPCG(seed, 1)), 3)
	})
	t.Run("postgres", func(t *testing.T) {
		killUnderLoad(t, newPGEnv(t, pgtest.Shared(t).NewDatabase(t)), rand.New(rand.NewPCG(seed, 2)), 2)
	})
}

// loadState is what the clients sent and what the server acknowledged.
type loadState struct {
	mu        sync.Mutex
	sent      map[string]map[string]bool // secret name → values sent
	acked     []ackedWrite
	tokens    map[string]string // acknowledged token id → token
	revoked   map[string]bool   // acknowledged revocations
	revoking  map[string]bool   // revocations sent
	rotations map[string]bool   // acknowledged rotation ids not yet seen done
	rotated   int               // acknowledged rotations
	answers   []faultAnswer     // every answer received
}

const (
	killCanary = "kill-canary-"
	killGrant  = "read:payments/prod/*"
	killTTL    = 24 * time.Hour
)

func killUnderLoad(t *testing.T, e *rotEnv, rng *rand.Rand, kills int) {
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	const rotated = 3
	for i := range rotated {
		name := fmt.Sprintf("payments/prod/ROT_%d", i)
		e.mustCLI("initial-rot-value", "secret", "set", name)
		e.mustCLI("", "rotation", "set", name, "--every", "30d", "--grace", "2s", "--rotator", "random")
	}
	s := &loadState{sent: map[string]map[string]bool{}, tokens: map[string]string{}, revoked: map[string]bool{},
		revoking: map[string]bool{}, rotations: map[string]bool{}}
	for round := range kills {
		c := e.client()
		c.http.Timeout = 5 * time.Second
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Go(func() { s.writeSecrets(c, stop, round, w) })
		}
		wg.Go(func() { s.makeTokens(c, stop, round) })
		wg.Go(func() { s.rotate(c, stop, rotated) })
		after := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		time.Sleep(after)
		e.cmd.Process.Kill()
		e.waitExit()
		close(stop)
		wg.Wait()
		s.mu.Lock()
		t.Logf("kill %d after %s: %d writes, %d tokens, %d revocations, %d rotations acknowledged so far",
			round+1, after, len(s.acked), len(s.tokens), len(s.revoked), s.rotated)
		for _, a := range s.answers {
			if a.status >= 500 {
				t.Errorf("an answer before the kill: got %d %s; want no 5xx", a.status, a.body)
			}
		}
		s.answers = nil
		s.mu.Unlock()

		e.start()
		inFlight := 0
		for i := range rotated {
			if h := e.history(fmt.Sprintf("payments/prod/ROT_%d", i)); slices.ContainsFunc(h, func(r rotate.Rotation) bool { return r.Step.InFlight() }) {
				inFlight++
			}
		}
		t.Logf("after the restart: %d of %d rotated secrets have a rotation in flight", inFlight, rotated)
		s.verify(t, e, rotated)
	}
	var values []string
	for _, w := range s.acked[max(0, len(s.acked)-20):] {
		values = append(values, w.value)
	}
	for _, tok := range s.tokens {
		values = append(values, tok)
		if len(values) > 30 {
			break
		}
	}
	if leak := holdsAny(e.logs.String(), append(values, killCanary, e.token)...); leak != "" {
		t.Errorf("the server log holds %s", leak)
	}
	e.noLeak(values...)
}

func (s *loadState) answer(a faultAnswer) {
	if a.err == nil {
		s.answers = append(s.answers, a)
	}
}

// writeSecrets writes KEY_<w>_<0..3> in turn until stop.
func (s *loadState) writeSecrets(c *faultClient, stop chan struct{}, round, w int) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("KEY_%d_%d", w, i%4)
		value := fmt.Sprintf("%s%d-%d-%d", killCanary, round, w, i)
		s.mu.Lock()
		if s.sent[name] == nil {
			s.sent[name] = map[string]bool{}
		}
		s.sent[name][value] = true
		s.mu.Unlock()
		a := c.do("PUT", "/v1/secrets/payments/prod/"+name, map[string]any{"value": value})
		s.mu.Lock()
		s.answer(a)
		if a.err == nil && a.status == 200 {
			s.acked = append(s.acked, ackedWrite{name, value, decodeVersion(a.body)})
		}
		s.mu.Unlock()
		if a.err != nil {
			time.Sleep(20 * time.Millisecond) // the server is gone: do not spin
		}
	}
}

// makeTokens creates tokens and revokes about half of them, oldest first.
func (s *loadState) makeTokens(c *faultClient, stop chan struct{}, round int) {
	var mine []string
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if i%3 == 2 && len(mine) > 0 {
			id := mine[0]
			mine = mine[1:]
			s.mu.Lock()
			s.revoking[id] = true
			s.mu.Unlock()
			a := c.do("POST", "/v1/tokens/"+id+"/revoke", nil)
			s.mu.Lock()
			s.answer(a)
			if a.err == nil && a.status == 200 {
				s.revoked[id] = true
			}
			s.mu.Unlock()
			continue
		}
		a := c.do("POST", "/v1/tokens", api.CreateTokenRequest{Name: fmt.Sprintf("load-%d-%d", round, i), Grants: []string{killGrant}, TTL: killTTL.String()})
		var got api.CreateTokenResponse
		s.mu.Lock()
		s.answer(a)
		if a.err == nil && a.status == 201 && json.Unmarshal(a.body, &got) == nil {
			s.tokens[got.Token.ID] = got.Secret
			mine = append(mine, got.Token.ID)
		}
		s.mu.Unlock()
		if a.err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// rotate starts rotations of ROT_<0..n-1> in turn; one in flight answers
// 409, which is fine.
func (s *loadState) rotate(c *faultClient, stop chan struct{}, n int) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(30 * time.Millisecond):
		}
		a := c.do("POST", fmt.Sprintf("/v1/rotation/rotate/payments/prod/ROT_%d", i%n), nil)
		var r rotate.Rotation
		s.mu.Lock()
		s.answer(a)
		if a.err == nil && a.status == 200 && json.Unmarshal(a.body, &r) == nil {
			s.rotations[r.ID] = true
			s.rotated++
		}
		s.mu.Unlock()
	}
}

// verify checks the restarted server against what was acknowledged.
func (s *loadState) verify(t *testing.T, e *rotEnv, rotated int) {
	t.Helper()
	c := e.client()
	get := func(path string, tok string, v any) int {
		t.Helper()
		cc := *c
		if tok != "" {
			cc.token = tok
		}
		a := cc.do("GET", path, nil)
		if a.err != nil {
			t.Fatalf("GET %s: %v", path, a.err)
		}
		if a.status == 200 && v != nil {
			if err := json.Unmarshal(a.body, v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return a.status
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	checkAcked(t, e, s.acked)

	// Every version listed opens, to a value a client sent.
	for name, sent := range s.sent {
		var h api.SecretVersions
		if st := get("/v1/secrets/payments/prod/"+name+"/versions", "", &h); st != 200 {
			t.Fatalf("%s: history got %d", name, st)
		}
		for _, v := range h.Versions {
			var got struct {
				Value string `json:"value"`
			}
			if st := get(fmt.Sprintf("/v1/secrets/payments/prod/%s?version=%d", name, v.Version), "", &got); st != 200 || !sent[got.Value] {
				t.Fatalf("%s version %d: got %d and a value no client sent; want every listed version whole", name, v.Version, st)
			}
		}
	}

	// Tokens: the acknowledged ones work unless revoked; every listed one is whole.
	var list api.TokenList
	if st := get("/v1/tokens", "", &list); st != 200 {
		t.Fatalf("token list: got %d", st)
	}
	listed := map[string]*tokenward.Token{}
	for _, tok := range list.Tokens {
		listed[tok.ID] = tok
		if !strings.HasPrefix(tok.Name, "load-") {
			continue
		}
		if len(tok.Grants) != 1 || tok.Grants[0].String() != killGrant || tok.ExpiresAt.Sub(tok.CreatedAt) != killTTL {
			t.Errorf("token %s: got grants %v, lifetime %s; want [%s] for %s (a token made whole or not at all)", tok.ID, tok.Grants, tok.ExpiresAt.Sub(tok.CreatedAt), killGrant, killTTL)
		}
	}
	for id, raw := range s.tokens {
		tok, ok := listed[id]
		if !ok {
			t.Fatalf("acknowledged token %s is not listed", id)
		}
		st := get("/v1/tokens/self", raw, nil)
		switch {
		case s.revoked[id] && (st != 401 || tok.RevokedAt.IsZero()):
			t.Errorf("token %s: revocation acknowledged, but it answers %d (revoked_at %v)", id, st, tok.RevokedAt)
		case !s.revoking[id] && (st != 200 || !tok.RevokedAt.IsZero()):
			t.Errorf("token %s: got %d (revoked_at %v); want it working", id, st, tok.RevokedAt)
		case s.revoking[id] && !s.revoked[id] && (st == 200) != tok.RevokedAt.IsZero():
			t.Errorf("token %s: answers %d while revoked_at is %v", id, st, tok.RevokedAt)
		}
	}

	if out := e.mustCLI("", "audit", "verify"); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify: got %q", out)
	}

	// Rotations resume and end done.
	for i := range rotated {
		name := fmt.Sprintf("payments/prod/ROT_%d", i)
		for deadline := time.Now().Add(30 * time.Second); ; {
			h := e.history(name)
			if !slices.ContainsFunc(h, func(r rotate.Rotation) bool { return r.Step.InFlight() }) {
				for _, r := range h {
					if r.Step != rotate.StepDone {
						t.Errorf("%s: rotation %s ended %s (%s); want done", name, r.ID, r.Step, r.Error)
					}
					delete(s.rotations, r.ID) // seen
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rotations still in flight 30s after the restart: %+v", name, h)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := get("/v1/secrets/payments/prod/ROT_"+fmt.Sprint(i)+"?version=previous", "", nil); got != 404 {
			t.Errorf("%s: PREVIOUS after every grace ended: got %d; want 404", name, got)
		}
	}
	if len(s.rotations) != 0 {
		t.Errorf("acknowledged rotations missing from the history: %v", s.rotations)
	}
}
