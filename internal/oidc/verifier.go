package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenward/tokenward"
)

// Defaults of a Verifier.
const (
	DefaultLeeway             = 60 * time.Second
	DefaultMinRefreshInterval = 30 * time.Second
	DefaultHTTPTimeout        = 15 * time.Second
	// MaxJWTBytes bounds the identity token a caller may send.
	MaxJWTBytes = 16 << 10
)

// Verifier verifies CI identity tokens and exchanges them for the grants of
// a trust binding. One verifier per issuer (signing keys found through OIDC
// discovery, or read from a binding's JWKS file) is created on first use and
// cached. The zero value is not usable; call NewVerifier.
type Verifier struct {
	// Now is the clock every time check uses.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// MaxTTL caps the lifetime of a minted token, whatever a binding says.
	MaxTTL time.Duration
	// MinRefreshInterval is the least time between two fetches of one
	// issuer's keys (and between two failed discoveries).
	MinRefreshInterval time.Duration
	// HTTPClient fetches discovery documents and key sets.
	HTTPClient *http.Client
	// Replay remembers exchanged identity tokens; nil refuses every exchange.
	Replay ReplayCache
	// DebugBindings puts the detailed reason of a denial into the message
	// the caller sees. For setting up bindings only: it tells a caller which
	// check failed.
	DebugBindings bool

	mu      sync.Mutex
	issuers map[string]*issuerEntry
}

// NewVerifier returns a Verifier with the defaults and an in-memory replay
// cache; a server with several instances sets a shared Replay.
func NewVerifier() *Verifier {
	return &Verifier{
		Now:                time.Now,
		Leeway:             DefaultLeeway,
		MaxTTL:             DefaultMaxTTL,
		MinRefreshInterval: DefaultMinRefreshInterval,
		HTTPClient:         &http.Client{Timeout: DefaultHTTPTimeout},
		Replay:             NewMemoryReplayCache(),
	}
}

// issuerEntry is the cached verifier of one issuer (and JWKS file).
type issuerEntry struct {
	mu          sync.Mutex
	verifier    *gooidc.IDTokenVerifier
	keys        *keySet
	lastFailure time.Time
	failure     error
}

// Denial is an exchange refused. Reason says in detail which check failed,
// for the audit log; the message a caller sees (Error, and
// tokenward.ErrorMessage) stays generic unless DebugBindings is on. Neither
// ever holds the identity token.
type Denial struct {
	// Code is tokenward.EUNAUTHORIZED, or EUNAVAILABLE when the issuer or
	// the replay cache could not be reached.
	Code string
	// Reason is the detailed cause, for the audit log.
	Reason string
	// Binding is the binding named in the request, or the one the token was
	// matched against, when there is one.
	Binding string
	// Replay marks a second use of an identity token: audit it as suspicious.
	Replay bool
	// CI holds the CI facts of the token (as in Result.CI) when its
	// signature was verified and a later check failed; nil otherwise, since
	// the claims of an unverified token are whatever its sender wrote.
	CI map[string]string

	debug bool
}

// Error returns the message a caller may see.
func (d *Denial) Error() string { return d.Unwrap().Error() }

// Unwrap returns the client-safe *tokenward.Error, so tokenward.ErrorCode
// and tokenward.ErrorMessage work on a Denial.
func (d *Denial) Unwrap() error {
	msg := "identity token rejected"
	if d.Code == tokenward.EUNAVAILABLE {
		msg = "identity token exchange unavailable; try again"
	}
	if d.debug {
		msg += ": " + d.Reason
	}
	return &tokenward.Error{Code: d.Code, Message: msg}
}

// Result is a successful exchange: what the minted token may do, until when,
// and the CI facts to record on it.
type Result struct {
	Binding string
	Grants  tokenward.Grants
	// TTL is min(binding TTL, Verifier.MaxTTL); ExpiresAt is Now()+TTL.
	TTL       time.Duration
	ExpiresAt time.Time
	// CI holds the facts of the job (issuer, repository, ref, run_id,
	// workflow, actor, sha, environment, subject), for Token.CI and
	// AuditEntry.CI. Values come from the verified token, cleaned to
	// printable text.
	CI map[string]string
	// ReplayID identifies the identity token in the ReplayCache: a hash of
	// issuer and jti, or of its decoded payload when it has no jti.
	ReplayID string
	// IdentityExpiresAt is the identity token's exp.
	IdentityExpiresAt time.Time
}

// TokenName returns a name for the minted token that is unique per identity
// token and valid for tokenward.ValidateTokenName.
func (r *Result) TokenName() string {
	id := r.ReplayID
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	return "jit." + r.Binding + "." + id[:min(len(id), 16)]
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) deny(binding, format string, args ...any) *Denial {
	return &Denial{Code: tokenward.EUNAUTHORIZED, Reason: fmt.Sprintf(format, args...), Binding: binding, debug: v.DebugBindings}
}

// Exchange verifies rawJWT and matches it against bindings. With a
// bindingName it checks that binding only; without, exactly one enabled
// binding must match. A failure is a *Denial. A successful exchange records
// the identity token in Replay, so the same token is refused next time.
func (v *Verifier) Exchange(ctx context.Context, bindings []*Binding, bindingName, rawJWT string) (*Result, error) {
	if rawJWT == "" {
		return nil, v.deny(bindingName, "no identity token")
	}
	if len(rawJWT) > MaxJWTBytes {
		return nil, v.deny(bindingName, "identity token is %d bytes (at most %d)", len(rawJWT), MaxJWTBytes)
	}
	// Parsed here only to route the token to the bindings of its issuer;
	// nothing from this unverified parse is trusted beyond that.
	parsed, err := josejwt.ParseSigned(rawJWT, allowedAlgs)
	if err != nil {
		return nil, v.deny(bindingName, "malformed identity token or algorithm not allowed (want RS256 or ES256): %s", cleanErr(err))
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	// payload is the decoded claims: the replay record of a token without
	// jti, which must not depend on how the token is encoded (base64url
	// decoding ignores CR, LF and the unused bits of the last character, so
	// one signed token has many valid spellings).
	var payload json.RawMessage
	if err := parsed.UnsafeClaimsWithoutVerification(&unverified, &payload); err != nil {
		return nil, v.deny(bindingName, "identity token claims are not a JSON object: %s", cleanErr(err))
	}
	iss := unverified.Issuer

	var candidates []*Binding
	if bindingName != "" {
		i := slices.IndexFunc(bindings, func(b *Binding) bool { return b != nil && b.Name == bindingName })
		if i < 0 {
			return nil, v.deny(bindingName, "no binding named %q", tokenward.Printable(bindingName))
		}
		b := bindings[i]
		if !b.Enabled {
			return nil, v.deny(b.Name, "binding %s is disabled", b.Name)
		}
		if b.Issuer != iss {
			return nil, v.deny(b.Name, "binding %s: issuer %q is not the binding's %s", b.Name, tokenward.Printable(iss), b.Issuer)
		}
		candidates = []*Binding{b}
	} else {
		var disabled []string
		for _, b := range bindings {
			if b == nil || b.Issuer != iss {
				continue
			}
			if !b.Enabled {
				disabled = append(disabled, b.Name)
				continue
			}
			candidates = append(candidates, b)
		}
		if len(candidates) == 0 {
			reason := fmt.Sprintf("no enabled binding trusts issuer %q", tokenward.Printable(iss))
			if len(disabled) > 0 {
				reason += " (disabled: " + strings.Join(disabled, ", ") + ")"
			}
			return nil, v.deny("", "%s", reason)
		}
	}

	// Verify once per key source; bindings of one issuer nearly always share one.
	type verified struct {
		claims map[string]json.RawMessage
		err    *Denial
	}
	bySource := map[string]*verified{}
	now := v.now()
	var matches []*Binding
	claimsOf := map[*Binding]map[string]json.RawMessage{}
	var anyVerified map[string]json.RawMessage // for the CI facts of a denial
	var reasons []string
	for _, b := range candidates {
		src := b.Issuer + "\x00" + b.JWKSFile
		vf, ok := bySource[src]
		if !ok {
			vf = &verified{}
			vf.claims, vf.err = v.verify(ctx, b, rawJWT, now)
			bySource[src] = vf
		}
		if vf.err != nil {
			if len(candidates) == 1 || vf.err.Code != tokenward.EUNAUTHORIZED {
				vf.err.Binding = b.Name
				return nil, vf.err
			}
			reasons = append(reasons, b.Name+": "+vf.err.Reason)
			continue
		}
		anyVerified = vf.claims
		if reason := matchBinding(b, vf.claims); reason != "" {
			reasons = append(reasons, b.Name+": "+reason)
			continue
		}
		matches = append(matches, b)
		claimsOf[b] = vf.claims
	}
	withCI := func(d *Denial) *Denial {
		if anyVerified != nil {
			d.CI = ciFacts(iss, anyVerified)
		}
		return d
	}
	switch {
	case len(matches) == 0 && bindingName != "":
		return nil, withCI(v.deny(bindingName, "binding %s", strings.Join(reasons, "; ")))
	case len(matches) == 0:
		return nil, withCI(v.deny("", "no binding matches: %s", strings.Join(reasons, "; ")))
	case len(matches) > 1:
		names := make([]string, len(matches))
		for i, b := range matches {
			names[i] = b.Name
		}
		return nil, withCI(v.deny("", "several bindings match (%s); name one", strings.Join(names, ", ")))
	}
	b := matches[0]
	claims := claimsOf[b]

	exp, _, _ := numericDate(claims["exp"])
	replayID := replayID(iss, claims["jti"], payload)
	if v.Replay == nil {
		return nil, &Denial{Code: tokenward.EUNAVAILABLE, Reason: "no replay cache configured", Binding: b.Name, debug: v.DebugBindings}
	}
	seen, err := v.Replay.Seen(ctx, replayID, exp.Add(replayKeep*v.Leeway))
	if err != nil {
		return nil, &Denial{Code: tokenward.EUNAVAILABLE, Reason: "replay cache: " + cleanErr(err), Binding: b.Name, debug: v.DebugBindings}
	}
	if seen {
		d := withCI(v.deny(b.Name, "replay: identity token %s was already exchanged", replayID))
		d.Replay = true
		return nil, d
	}

	ttl := b.TTL
	if v.MaxTTL > 0 && ttl > v.MaxTTL {
		ttl = v.MaxTTL
	}
	return &Result{
		Binding:           b.Name,
		Grants:            slices.Clone(b.Grants),
		TTL:               ttl,
		ExpiresAt:         now.Add(ttl),
		CI:                ciFacts(iss, claims),
		ReplayID:          replayID,
		IdentityExpiresAt: exp,
	}, nil
}

// verify checks signature, issuer, algorithm and times of rawJWT for the
// issuer of b, and returns its claims.
func (v *Verifier) verify(ctx context.Context, b *Binding, rawJWT string, now time.Time) (map[string]json.RawMessage, *Denial) {
	e, err := v.entry(ctx, b)
	if err != nil {
		return nil, &Denial{Code: tokenward.EUNAVAILABLE, Reason: "issuer " + b.Issuer + ": " + cleanErr(err), Binding: b.Name, debug: v.DebugBindings}
	}
	var unavailable error // set by keySet.VerifySignature
	tok, err := e.verifier.Verify(context.WithValue(ctx, keysUnavailableKey{}, &unavailable), rawJWT)
	if unavailable != nil {
		// The issuer's keys could not be fetched: as a failed discovery,
		// the exchange is unavailable, not the token refused.
		return nil, &Denial{Code: tokenward.EUNAVAILABLE, Reason: "issuer " + b.Issuer + ": keys: " + cleanErr(unavailable), Binding: b.Name, debug: v.DebugBindings}
	}
	if err != nil {
		return nil, v.deny(b.Name, "verification failed: %s", cleanErr(err))
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return nil, v.deny(b.Name, "claims are not a JSON object")
	}
	if d := v.checkTimes(b.Name, claims, now); d != nil {
		return nil, d
	}
	return claims, nil
}

// replayKeep is how many leeways past its exp a token's replay record is
// kept. One would do for one clock; servers sharing the record judge the
// token's exp by their own clocks and sweep records by theirs, so a server
// whose clock is behind another's still accepts a token the other's sweep
// has forgotten. Three keep replays refused while servers' clocks disagree
// by up to a leeway either way.
const replayKeep = 3

// checkTimes checks exp (required), nbf and iat with Leeway. go-oidc's own
// expiry check is off because it allows no leeway on exp, a fixed 5 minutes
// on nbf, and ignores iat.
func (v *Verifier) checkTimes(binding string, claims map[string]json.RawMessage, now time.Time) *Denial {
	exp, ok, err := numericDate(claims["exp"])
	switch {
	case err != nil:
		return v.deny(binding, "exp: %s", err)
	case !ok:
		return v.deny(binding, "exp: absent")
	case !now.Before(exp.Add(v.Leeway)):
		return v.deny(binding, "expired at %s (now %s, leeway %s)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.Leeway)
	}
	nbf, ok, err := numericDate(claims["nbf"])
	switch {
	case err != nil:
		return v.deny(binding, "nbf: %s", err)
	case ok && now.Add(v.Leeway).Before(nbf):
		return v.deny(binding, "not valid before %s (now %s, leeway %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.Leeway)
	}
	iat, ok, err := numericDate(claims["iat"])
	switch {
	case err != nil:
		return v.deny(binding, "iat: %s", err)
	case ok && now.Add(v.Leeway).Before(iat):
		return v.deny(binding, "issued in the future at %s (now %s, leeway %s)", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.Leeway)
	}
	return nil
}

// numericDate reads a JWT NumericDate; ok is false when the claim is absent
// or null.
func numericDate(raw json.RawMessage) (t time.Time, ok bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false, errors.New("not a number")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, errors.New("not a date")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// matchBinding returns why the verified claims fail b, or "" when they meet
// its audience and every claim condition.
func matchBinding(b *Binding, claims map[string]json.RawMessage) string {
	// A stored binding is trusted only as far as it is well formed: one
	// without conditions would trust the whole issuer.
	if len(b.Claims) == 0 || len(b.Audiences) == 0 || len(b.Grants) == 0 || b.TTL <= 0 {
		return "binding is malformed (no claim conditions, audience or grants, or a TTL that is not positive)"
	}
	var aud []string
	raw := bytes.TrimSpace(claims["aud"])
	if len(raw) > 0 && raw[0] == '[' {
		_ = json.Unmarshal(raw, &aud)
	} else if len(raw) > 0 {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			aud = []string{one}
		}
	}
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(b.Audiences, a) }) {
		shown := make([]string, 0, len(aud))
		for _, a := range aud[:min(len(aud), 4)] {
			shown = append(shown, tokenward.Printable(a))
		}
		return fmt.Sprintf("audience %q is none of %q", shown, b.Audiences)
	}
	for _, c := range b.Claims {
		if err := c.Validate(); err != nil {
			return "invalid condition: " + tokenward.ErrorMessage(err)
		}
		val, state := claimString(claims[c.Claim])
		switch state {
		case claimAbsent:
			return fmt.Sprintf("claim %s: absent from the token; want %s", c.Claim, c.describe())
		case claimNotScalar:
			return fmt.Sprintf("claim %s: not a string, number or boolean; want %s", c.Claim, c.describe())
		}
		if !c.Match(val) {
			return fmt.Sprintf("claim %s: got %q; want %s", c.Claim, tokenward.Printable(val), c.describe())
		}
	}
	return ""
}

func (c ClaimCondition) describe() string {
	switch c.Op {
	case MatchExact:
		return fmt.Sprintf("%q", c.Values[0])
	case MatchGlob:
		return fmt.Sprintf("glob %q", c.Values[0])
	}
	return fmt.Sprintf("one of %q", c.Values)
}

type claimState int

const (
	claimScalar claimState = iota
	claimAbsent
	claimNotScalar
)

// claimString returns the string form of a claim: a string as is, a
// boolean or number as its JSON text.
func claimString(raw json.RawMessage) (string, claimState) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", claimAbsent
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || len(s) > maxClaimValueLen {
			return "", claimNotScalar
		}
		return s, claimScalar
	case c == 't' || c == 'f':
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return "", claimNotScalar
		}
		if b {
			return "true", claimScalar
		}
		return "false", claimScalar
	case c == '-' || c >= '0' && c <= '9':
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", claimNotScalar
		}
		return n.String(), claimScalar
	}
	return "", claimNotScalar
}

// ciFactClaims maps each CI fact to the claims that carry it, GitHub first,
// then GitLab.
var ciFactClaims = []struct {
	fact   string
	claims []string
}{
	{"repository", []string{"repository", "project_path"}},
	{"ref", []string{"ref"}},
	{"run_id", []string{"run_id", "pipeline_id"}},
	{"workflow", []string{"workflow_ref", "ci_config_ref_uri", "workflow"}},
	{"actor", []string{"actor", "user_login"}},
	{"sha", []string{"sha"}},
	{"environment", []string{"environment"}},
	{"subject", []string{"sub"}},
}

// maxCIFactLen bounds a CI fact recorded on a token.
const maxCIFactLen = 256

func ciFacts(iss string, claims map[string]json.RawMessage) map[string]string {
	out := map[string]string{"issuer": cleanFact(iss)}
	for _, f := range ciFactClaims {
		for _, name := range f.claims {
			if v, st := claimString(claims[name]); st == claimScalar && v != "" {
				out[f.fact] = cleanFact(v)
				break
			}
		}
	}
	return out
}

// cleanFact keeps a claim value printable and bounded before it is stored.
func cleanFact(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxCIFactLen {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// replayID names an identity token in the replay cache: the issuer and jti
// when there is a jti, else the token's decoded (signed) payload, never its
// encoded form, which a replayer can vary; hashed either way so the cache
// holds no token and ids have one length.
func replayID(iss string, jti json.RawMessage, payload []byte) string {
	if s, st := claimString(jti); st == claimScalar && s != "" {
		h := sha256.Sum256([]byte(iss + "\x00" + s))
		return "jti:" + hex.EncodeToString(h[:])
	}
	h := sha256.Sum256(payload)
	return "sha256:" + hex.EncodeToString(h[:])
}

// cleanErr bounds an error's text for a reason. Errors from go-oidc and
// go-jose name claims and algorithms, never the token itself.
func cleanErr(err error) string {
	s := err.Error()
	const max = 300
	if len(s) > max {
		s = s[:max] + "..."
	}
	return cleanFact(s)
}

// entry returns the cached verifier for b's issuer and key source, creating
// it on first use. A failed discovery is remembered for MinRefreshInterval
// so a broken issuer is not hammered.
func (v *Verifier) entry(ctx context.Context, b *Binding) (*issuerEntry, error) {
	key := b.Issuer + "\x00" + b.JWKSFile
	v.mu.Lock()
	if v.issuers == nil {
		v.issuers = make(map[string]*issuerEntry)
	}
	e, ok := v.issuers[key]
	if !ok {
		e = &issuerEntry{}
		v.issuers[key] = e
	}
	v.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.verifier != nil {
		return e, nil
	}
	now := v.now()
	if e.failure != nil && now.Sub(e.lastFailure) < v.MinRefreshInterval {
		return nil, e.failure
	}
	ks, err := v.newKeySet(ctx, b)
	if err != nil {
		e.failure, e.lastFailure = err, now
		return nil, err
	}
	e.keys = ks
	e.verifier = gooidc.NewVerifier(b.Issuer, ks, &gooidc.Config{
		// Audience and times are checked by Exchange: a binding accepts
		// several audiences, and the leeway is ours.
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: []string{string(allowedAlgs[0]), string(allowedAlgs[1])},
		Now:                  v.now,
	})
	e.failure = nil
	return e, nil
}

func (v *Verifier) newKeySet(ctx context.Context, b *Binding) (*keySet, error) {
	ks := &keySet{now: v.now, minInterval: v.MinRefreshInterval}
	if b.JWKSFile != "" {
		ks.source, ks.fetch = b.JWKSFile, fetchJWKSFile(b.JWKSFile)
		return ks, nil
	}
	if err := ValidateIssuer(b.Issuer); err != nil {
		return nil, err
	}
	client := v.client()
	// Not the request's cancellation: a failed discovery is remembered for
	// every caller, so one impatient client must not cause it.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
	defer cancel()
	provider, err := gooidc.NewProvider(gooidc.ClientContext(dctx, client), b.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %v", err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&doc); err != nil || doc.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	// Plain http only for a loopback issuer's loopback keys (tests, local
	// fakes): a remote issuer's document must not send the server to its
	// own loopback.
	u, err := url.Parse(doc.JWKSURI)
	plainOK := strings.HasPrefix(b.Issuer, "http:") && u != nil && u.Scheme == "http" && isLoopback(u.Hostname())
	if err != nil || !(u.Scheme == "https" || plainOK) {
		return nil, fmt.Errorf("jwks_uri %q is not https", tokenward.Printable(doc.JWKSURI))
	}
	ks.source, ks.fetch = doc.JWKSURI, fetchJWKSURL(client, doc.JWKSURI)
	return ks, nil
}

// client returns HTTPClient with every response body bounded, since go-oidc
// reads discovery documents whole.
func (v *Verifier) client() *http.Client {
	base := v.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	c := *base
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitedTransport{rt}
	return &c
}

type limitedTransport struct{ rt http.RoundTripper }

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	return resp, nil
}

// KeyFetches returns how many times the keys of issuer (and JWKS file, ""
// for discovery) were fetched: a number for metrics and tests.
func (v *Verifier) KeyFetches(issuer, jwksFile string) int {
	v.mu.Lock()
	e := v.issuers[issuer+"\x00"+jwksFile]
	v.mu.Unlock()
	if e == nil {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.keys == nil {
		return 0
	}
	return e.keys.Fetches()
}
