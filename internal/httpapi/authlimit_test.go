package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// lookupStore counts token lookups by hash. Once armed with a wave of n,
// every lookup waits until n lookups have started (or a second has
// passed), so that all the lookups a wave of concurrent requests gets
// past the limiter are in flight at once, whatever the scheduling.
type lookupStore struct {
	tokenward.Store

	mu      sync.Mutex
	n       int           // lookups since armed
	wave    int           // 0: not armed
	arrived chan struct{} // closed when wave lookups have started
}

func (s *lookupStore) arm(wave int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n, s.wave, s.arrived = 0, wave, make(chan struct{})
}

func (s *lookupStore) lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *lookupStore) TokenByHash(ctx context.Context, hash [32]byte) (*tokenward.Token, error) {
	s.mu.Lock()
	s.n++
	arrived := s.arrived
	if s.wave > 0 && s.n == s.wave {
		close(s.arrived)
	}
	s.mu.Unlock()
	if arrived != nil {
		select {
		case <-arrived:
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	return s.Store.TokenByHash(ctx, hash)
}

// mustServeLookups serves an API with failure limit on a store that counts
// token lookups, on a clock that stands still (no bucket refills).
func mustServeLookups(tb testing.TB, failures httpapi.Limit) (*httptest.Server, *lookupStore, string) {
	tb.Helper()
	var store *lookupStore
	c, _, admin := mustCoreOn(tb, func(s tokenward.Store) tokenward.Store {
		store = &lookupStore{Store: s}
		return store
	})
	a := httpapi.NewServer(c, nil)
	a.AuthFailureLimit = failures
	srv := httptest.NewServer(a)
	tb.Cleanup(srv.Close)
	return srv, store, admin
}

// wave sends the tokens at once, one request each, and counts the answers
// by status.
func wave(tb testing.TB, srv *httptest.Server, tokens []string) map[int]int {
	tb.Helper()
	var (
		mu     sync.Mutex
		status = map[int]int{}
		wg     sync.WaitGroup
	)
	for _, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", srv.URL+"/v1/projects", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := srv.Client().Do(req)
			if err != nil {
				tb.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return status
}

func guesses(tb testing.TB, n int) []string {
	tb.Helper()
	out := make([]string, n)
	for i := range out {
		g, err := tokenward.NewTokenSecret(tokenward.TokenService)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = g
	}
	return out
}

// A wave of concurrent guesses gets no more store lookups past the
// failed-authentication limit than its burst: the budget was checked
// before the lookup and spent after it, so all of a wave passed the check.
func TestAuthFailureBudgetHoldsUnderConcurrency(t *testing.T) {
	const burst, n = 5, 20
	srv, store, _ := mustServeLookups(t, httpapi.Limit{Rate: 1.0 / 3600, Burst: burst})
	store.arm(n)
	got := wave(t, srv, guesses(t, n))
	if l := store.lookups(); l > burst {
		t.Errorf("store lookups: got %d; want at most %d", l, burst)
	}
	if got[http.StatusUnauthorized] != burst || got[http.StatusTooManyRequests] != n-burst {
		t.Errorf("answers: got %v; want %d × 401 and %d × 429", got, burst, n-burst)
	}
	// The budget is spent: the next guess is refused with no lookup.
	store.arm(0)
	if got := wave(t, srv, guesses(t, 1)); got[http.StatusTooManyRequests] != 1 {
		t.Errorf("a guess after the wave: got %v; want 429", got)
	}
	if l := store.lookups(); l != 0 {
		t.Errorf("store lookups after the budget is spent: got %d; want 0", l)
	}
}

// A valid token spends nothing: its reservation is given back, and once
// it authenticated, a wave of concurrent requests with it is served in
// full, however small the budget.
func TestAuthValidTokenSpendsNoFailures(t *testing.T) {
	srv, store, admin := mustServeLookups(t, httpapi.Limit{Rate: 1.0 / 3600, Burst: 1})
	// Cold: the token is looked up in the store, under a reservation.
	if got := wave(t, srv, []string{admin}); got[http.StatusOK] != 1 {
		t.Fatalf("the admin token, cold: got %v; want 200", got)
	}
	if got := wave(t, srv, []string{admin, admin, admin, admin, admin, admin, admin, admin}); got[http.StatusOK] != 8 {
		t.Errorf("a wave with the admin token: got %v; want 8 × 200", got)
	}
	// The one failure is still there to spend.
	if got := wave(t, srv, guesses(t, 1)); got[http.StatusUnauthorized] != 1 {
		t.Errorf("a first guess: got %v; want 401", got)
	}
	if got := wave(t, srv, guesses(t, 1)); got[http.StatusTooManyRequests] != 1 {
		t.Errorf("a second guess: got %v; want 429", got)
	}
	// A known token is still served from an address whose budget is spent
	// only as before: refused (the limit is per address).
	store.arm(0)
	if got := wave(t, srv, []string{admin}); got[http.StatusTooManyRequests] != 1 {
		t.Errorf("the admin token after the budget is spent: got %v; want 429", got)
	}
}

// A wave of first requests with a new, valid token is served in full,
// however small the budget: while it is looked up, its reservation waits
// the others' (given back) rather than refusing them.
func TestAuthColdTokenWaveIsServed(t *testing.T) {
	srv, store, admin := mustServeLookups(t, httpapi.Limit{Rate: 1.0 / 3600, Burst: 1})
	store.arm(2) // the first lookup waits (up to a second) for a second one, which must not come
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = admin
	}
	if got := wave(t, srv, tokens); got[http.StatusOK] != 8 {
		t.Fatalf("a cold wave with the admin token: got %v; want 8 × 200", got)
	}
	// Nothing was spent: the one failure is still there.
	if got := wave(t, srv, guesses(t, 1)); got[http.StatusUnauthorized] != 1 {
		t.Errorf("a first guess after the wave: got %v; want 401", got)
	}
}
