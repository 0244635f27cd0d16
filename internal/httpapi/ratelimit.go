package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
)

// Limit is a token-bucket rate: Rate requests a second on average, Burst at
// once. The zero Limit is no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// On reports whether l limits anything.
func (l Limit) On() bool { return l.Rate > 0 }

// DefaultAuthFailureLimit is the per-source-address limit on failed
// authentications the server command sets: a token that does not
// authenticate (malformed, unknown, revoked, expired) spends one. Tokens
// are 256-bit random, so guessing is hopeless anyway; the limit keeps a
// guesser from costing the server a lookup per try.
var DefaultAuthFailureLimit = Limit{Rate: 1, Burst: 20}

// maxBuckets bounds each limiter's table (per token, per address), so a
// flood of distinct keys cannot grow it without end.
const maxBuckets = 1 << 16

// buckets is a token bucket per key (a token id, a client address),
// bounded to max keys. When full it first forgets the buckets that are
// full again (idle: forgetting one changes nothing); if that is not
// enough it forgets arbitrary ones down to 3/4 of max — a forgotten key
// starts again with a full burst, which errs on the side of serving.
type buckets struct {
	limit Limit
	max   int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	// held counts, per key, the requests reserved and not yet settled
	// (reserve, settle): they stand as spent until they are settled.
	held map[string]int
	// settled is closed (and replaced) at every settle: reserve waits on
	// it while only held requests stand between it and a request.
	settled chan struct{}
}

func newBuckets(l Limit, max int) *buckets {
	return &buckets{limit: l, max: max, m: map[string]*rate.Limiter{}, held: map[string]int{}, settled: make(chan struct{})}
}

// take spends one request of key's bucket at now. When the bucket is empty
// it spends nothing and returns how long until it holds one again.
func (b *buckets) take(key string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeLocked(key, now, false)
}

// reserve holds one request of key's bucket for an outcome not yet known,
// so that concurrent callers cannot all pass on one request left: it
// counts as spent (for allowed and reserve) until settle. When the bucket
// is empty it holds nothing and returns how long until it holds one
// again. When what is left is held by others, it waits for one of them to
// settle (a given-back request is the next caller's), or for ctx: a burst
// of first requests with a new, valid token is served, not refused.
func (b *buckets) reserve(ctx context.Context, key string, now func() time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		left := b.tokensLocked(key, now())
		if left-float64(b.held[key]) >= 1 {
			b.held[key]++
			return true, 0
		}
		if left < 1 {
			return false, b.waitFor(left)
		}
		settled := b.settled
		b.mu.Unlock()
		select {
		case <-settled:
		case <-ctx.Done():
		}
		b.mu.Lock()
		if ctx.Err() != nil {
			return false, time.Second
		}
	}
}

// settle ends a reservation of key's bucket: spend spends it at now,
// else it is given back.
func (b *buckets) settle(key string, now time.Time, spend bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[key]--; b.held[key] <= 0 {
		delete(b.held, key)
	}
	close(b.settled)
	b.settled = make(chan struct{})
	if spend {
		// The bucket held it when it was reserved; spend it even if a
		// caller that did not reserve (take) has emptied it since.
		b.takeLocked(key, now, true)
	}
}

func (b *buckets) takeLocked(key string, now time.Time, owed bool) (ok bool, wait time.Duration) {
	l := b.m[key]
	if l == nil {
		if len(b.m) >= b.max {
			b.evict(now)
		}
		l = rate.NewLimiter(rate.Limit(b.limit.Rate), max(b.limit.Burst, 1))
		l.SetLimitAt(now, rate.Limit(b.limit.Rate)) // start its clock at now, not at the wall clock
		b.m[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 && !owed {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// allowed reports whether key's bucket, less its held reservations, holds
// a request at now, spending nothing (an unknown key's bucket is full).
func (b *buckets) allowed(key string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allowedLocked(key, now)
}

func (b *buckets) allowedLocked(key string, now time.Time) (ok bool, wait time.Duration) {
	t := b.tokensLocked(key, now) - float64(b.held[key])
	if t >= 1 {
		return true, 0
	}
	return false, b.waitFor(t)
}

// tokensLocked is what key's bucket holds at now, held requests included
// (an unknown key's bucket is full).
func (b *buckets) tokensLocked(key string, now time.Time) float64 {
	if l := b.m[key]; l != nil {
		return l.TokensAt(now)
	}
	return float64(max(b.limit.Burst, 1))
}

// waitFor is how long until a bucket holding t holds one request.
func (b *buckets) waitFor(t float64) time.Duration {
	return time.Duration((1 - t) / b.limit.Rate * float64(time.Second))
}

func (b *buckets) evict(now time.Time) {
	burst := float64(max(b.limit.Burst, 1))
	for k, l := range b.m {
		if l.TokensAt(now) >= burst {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) <= b.max*3/4 {
			break
		}
		delete(b.m, k)
	}
}

func (b *buckets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// limiters are the server's rate limiters, made on first use from the
// Server's TokenLimit and AuthFailureLimit.
type limiters struct {
	once     sync.Once
	tokens   *buckets     // per token id; nil: no limit
	failures *buckets     // failed authentications per client address; nil: no limit
	known    *knownTokens // tokens that authenticated; with failures only
}

func (s *Server) limits() *limiters {
	s.limiter.once.Do(func() {
		if s.TokenLimit.On() {
			s.limiter.tokens = newBuckets(s.TokenLimit, maxBuckets)
		}
		if s.AuthFailureLimit.On() {
			s.limiter.failures = newBuckets(s.AuthFailureLimit, maxBuckets)
			s.limiter.known = newKnownTokens(knownTokenTTL, maxBuckets)
		}
	})
	return &s.limiter
}

// authenticate is Core.Authenticate behind the server's rate limits: a
// client address over AuthFailureLimit is refused before its token is
// looked at, a token that matches no token (a guess; not a revoked or
// expired one) spends one of its address's failures, and a token over
// TokenLimit is refused. A refusal is
// ERATELIMITED (429, audited as denied) with Retry-After set on w. The
// refused token is returned with the error, so the audit entry names it.
//
// A token not known to have authenticated here lately (see knownTokens)
// holds one of its address's failures while it is looked up, given back
// if it turns out to be no guess: checked before the lookup and spent
// after, a wave of concurrent guesses would all pass a budget smaller
// than the wave. A known token holds nothing, so that concurrent requests
// with it are not refused for one another's sake.
func (s *Server) authenticate(ctx context.Context, w http.ResponseWriter, raw, ip string) (*tokenward.Token, error) {
	var tok *tokenward.Token
	hash := tokenward.HashToken(raw) // once per request: the limiter's and the core's
	refused, wait, err := s.limitAuth(ctx, raw, hash, ip, func() (err error) {
		tok, err = s.Core.AuthenticateHashed(ctx, raw, hash, ip)
		return err
	})
	switch {
	case refused:
		return nil, rateLimited(w, wait, tooManyFailures)
	case err != nil:
		return nil, err
	}
	return s.tokenLimit(w, tok)
}

// limitAuth runs auth, the authentication of raw (hashed: hash) presented
// from ip, within ip's budget of failed authentications
// (AuthFailureLimit): refused, with
// how long until the budget holds one again, when it has none left, and
// auth is not run; else auth's error, a guess spending one of the budget.
//
// A token not known to have authenticated here lately (knownTokens) holds
// one of the budget while it is looked up, given back if it turns out to
// be no guess: checked before the lookup and spent after, a wave of
// concurrent guesses would all pass a budget smaller than the wave. A
// known token holds nothing, so that concurrent requests with it do not
// wait for one another.
func (s *Server) limitAuth(ctx context.Context, raw string, hash [32]byte, ip string, auth func() error) (refused bool, wait time.Duration, err error) {
	lim := s.limits()
	if raw == "" || lim.failures == nil {
		return false, 0, auth()
	}
	key := tokenward.SourceKey(ip)
	if now := s.Core.Now(); lim.known.has(hash, now) {
		if ok, wait := lim.failures.allowed(key, now); !ok {
			return true, wait, nil
		}
		err := auth()
		if isGuess(raw, err) { // no longer in the store (pruned)
			lim.failures.take(key, s.Core.Now())
		}
		return false, 0, err
	}
	if ok, wait := lim.failures.reserve(ctx, key, s.Core.Now); !ok {
		return true, wait, nil
	}
	err = auth()
	lim.failures.settle(key, s.Core.Now(), isGuess(raw, err))
	if err == nil {
		lim.known.add(hash, s.Core.Now())
	}
	return false, 0, err
}

// LimitAuth is limitAuth for another door into the same server (the
// database gateway), so that both spend one budget: ERATELIMITED when ip
// has none left (auth is not run), else auth's error.
func (s *Server) LimitAuth(ctx context.Context, raw, ip string, auth func() error) error {
	refused, wait, err := s.limitAuth(ctx, raw, tokenward.HashToken(raw), ip, auth)
	if refused {
		return tokenward.Errorf(tokenward.ERATELIMITED, "%s; retry after %d s", tooManyFailures, retryAfter(wait))
	}
	return err
}

// tokenLimit refuses tok when it is over TokenLimit.
func (s *Server) tokenLimit(w http.ResponseWriter, tok *tokenward.Token) (*tokenward.Token, error) {
	if lim := s.limits(); lim.tokens != nil {
		if ok, wait := lim.tokens.take(tok.ID, s.Core.Now()); !ok {
			return tok, rateLimited(w, wait, "too many requests for this token")
		}
	}
	return tok, nil
}

const tooManyFailures = "too many failed authentications from this address"

// isGuess reports whether err, the outcome of authenticating raw, is a
// guess: a token that matches no token at all (CountAuthFailure).
func isGuess(raw string, err error) bool {
	_, known := core.PresentedToken(err)
	return raw != "" && !known && tokenward.ErrorCode(err) == tokenward.EUNAUTHORIZED
}

// knownTokenTTL is how long a token that authenticated counts as known
// (knownTokens).
const knownTokenTTL = 10 * time.Minute

// knownTokens are the SHA-256 hashes of the tokens that authenticated
// lately, bounded to max: such a token is no guess (a store holds or held
// it), and authenticate holds none of its address's failures for it. It
// trusts nothing else: the token is authenticated as any other.
type knownTokens struct {
	ttl time.Duration
	max int
	mu  sync.RWMutex
	m   map[[32]byte]time.Time // when it last authenticated
}

func newKnownTokens(ttl time.Duration, max int) *knownTokens {
	return &knownTokens{ttl: ttl, max: max, m: map[[32]byte]time.Time{}}
}

func (k *knownTokens) has(hash [32]byte, now time.Time) bool {
	k.mu.RLock()
	at, ok := k.m[hash]
	k.mu.RUnlock()
	return ok && !now.Before(at) && now.Sub(at) < k.ttl
}

func (k *knownTokens) add(hash [32]byte, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[hash]; !ok && len(k.m) >= k.max {
		for h, at := range k.m {
			if now.Before(at) || now.Sub(at) >= k.ttl {
				delete(k.m, h)
			}
		}
		for h := range k.m {
			if len(k.m) <= k.max*3/4 {
				break
			}
			delete(k.m, h)
		}
	}
	k.m[hash] = now
}

// rateLimited sets Retry-After (whole seconds, rounded up, at least 1) and
// returns the refusal.
func rateLimited(w http.ResponseWriter, wait time.Duration, msg string) error {
	secs := retryAfter(wait)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return tokenward.Errorf(tokenward.ERATELIMITED, "%s; retry after %d s", msg, secs)
}

// retryAfter is wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) int64 {
	return max(int64(math.Ceil(wait.Seconds())), 1)
}

// ParseLimit reads a rate limit as the server's --rate-limit takes it:
// "N/s" or "N/m" (N a positive number), optionally ",burst=B" (B a positive
// whole number; default N per second rounded up, at least 1); "0" or ""
// is no limit.
func ParseLimit(s string) (Limit, error) {
	if s == "" || s == "0" {
		return Limit{}, nil
	}
	bad := func(why string) (Limit, error) {
		return Limit{}, tokenward.Errorf(tokenward.EINVALID, "rate limit %q: %s (want N/s or N/m, optionally ,burst=B)", tokenward.Printable(trunc(s, 64)), why)
	}
	spec, burstSpec, hasBurst := strings.Cut(s, ",")
	num, unit, ok := strings.Cut(spec, "/")
	if !ok {
		return bad("no unit")
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n <= 0 || n > 1e9 {
		return bad("the rate must be a positive number")
	}
	switch unit {
	case "s":
	case "m":
		n /= 60
	default:
		return bad("the unit must be s or m")
	}
	l := Limit{Rate: n, Burst: max(int(math.Ceil(n)), 1)}
	if hasBurst {
		v, ok := strings.CutPrefix(burstSpec, "burst=")
		b, err := strconv.Atoi(v)
		if !ok || err != nil || b < 1 || b > 1e9 {
			return bad("the burst must be burst=B, B a positive whole number")
		}
		l.Burst = b
	}
	return l, nil
}

// String is l as ParseLimit reads it.
func (l Limit) String() string {
	if !l.On() {
		return "0"
	}
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/s,burst=" + strconv.Itoa(l.Burst)
}
