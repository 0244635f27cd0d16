package httpapi

import (
	"context"
	"math"
	"net/http"
	"net/netip"
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
}

func newBuckets(l Limit, max int) *buckets {
	return &buckets{limit: l, max: max, m: map[string]*rate.Limiter{}}
}

// take spends one request of key's bucket at now. When the bucket is empty
// it spends nothing and returns how long until it holds one again.
func (b *buckets) take(key string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// allowed reports whether key's bucket holds a request at now, spending
// nothing (an unknown key's bucket is full).
func (b *buckets) allowed(key string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.m[key]
	if l == nil {
		return true, 0
	}
	t := l.TokensAt(now)
	if t >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - t) / b.limit.Rate * float64(time.Second))
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
	tokens   *buckets // per token id; nil: no limit
	failures *buckets // failed authentications per client address; nil: no limit
}

func (s *Server) limits() *limiters {
	s.limiter.once.Do(func() {
		if s.TokenLimit.On() {
			s.limiter.tokens = newBuckets(s.TokenLimit, maxBuckets)
		}
		if s.AuthFailureLimit.On() {
			s.limiter.failures = newBuckets(s.AuthFailureLimit, maxBuckets)
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
func (s *Server) authenticate(ctx context.Context, w http.ResponseWriter, raw, ip string) (*tokenward.Token, error) {
	lim := s.limits()
	if raw != "" {
		if wait, ok := s.failuresLeft(ip); !ok {
			return nil, rateLimited(w, wait, tooManyFailures)
		}
	}
	tok, err := s.Core.Authenticate(ctx, raw, ip)
	if err != nil {
		s.CountAuthFailure(raw, ip, err)
		return nil, err
	}
	if lim.tokens != nil {
		if ok, wait := lim.tokens.take(tok.ID, s.Core.Now()); !ok {
			return tok, rateLimited(w, wait, "too many requests for this token")
		}
	}
	return tok, nil
}

const tooManyFailures = "too many failed authentications from this address"

// failuresLeft reports whether ip has a failed authentication left
// (AuthFailureLimit), and if not how long until it has.
func (s *Server) failuresLeft(ip string) (time.Duration, bool) {
	lim := s.limits()
	if lim.failures == nil {
		return 0, true
	}
	ok, wait := lim.failures.allowed(failureKey(ip), s.Core.Now())
	return wait, ok
}

// AuthFailureGate is the API's limit on failed authentications per
// address (AuthFailureLimit) for another door into the same server (the
// database gateway), so that both spend one budget: ERATELIMITED when ip
// has none left, else nil. CountAuthFailure spends from it.
func (s *Server) AuthFailureGate(ip string) error {
	wait, ok := s.failuresLeft(ip)
	if ok {
		return nil
	}
	return tokenward.Errorf(tokenward.ERATELIMITED, "%s; retry after %d s", tooManyFailures, retryAfter(wait))
}

// CountAuthFailure spends one of ip's failed authentications when err, the
// outcome of authenticating raw, is a guess: a token that matches no token
// at all. A known token that is revoked or expired (a stale CI setting) is
// no guess, and must not lock everyone behind the same address (a NAT, a
// CI provider's egress) out.
func (s *Server) CountAuthFailure(raw, ip string, err error) {
	lim := s.limits()
	if _, known := core.PresentedToken(err); lim.failures != nil && raw != "" && !known && tokenward.ErrorCode(err) == tokenward.EUNAUTHORIZED {
		lim.failures.take(failureKey(ip), s.Core.Now())
	}
}

// failureKey is the bucket of failed authentications ip spends from: the
// address itself for IPv4, its /64 for IPv6 — one host commonly holds a
// whole /64, and would otherwise get a fresh budget per address.
func failureKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
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
