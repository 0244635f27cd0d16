package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
)

// Injection styles of a route's Inject.
const (
	InjectHeader = "header"
	InjectQuery  = "query"
	InjectBasic  = "basic"
)

// placeholder is what a template's secret value stands for.
const placeholder = "{{value}}"

// MaxAllowRules bounds a route's allow rules.
const MaxAllowRules = 64

// DefaultTimeout bounds waiting for an upstream's response headers when a
// route says nothing.
const DefaultTimeout = 30 * time.Second

// Route is a stored route checked and made ready to serve: its upstream,
// allow rules, injection and rate parsed.
type Route struct {
	tokenward.GatewayRoute
	upstream *url.URL
	rules    []Rule
	style    string // InjectHeader, InjectQuery or InjectBasic
	key      string // the header (canonical) or query parameter
	template string // with placeholder
	// Rate and Burst bound each token's calls (Rate per second); Rate 0:
	// no bound of the route's own.
	Rate  float64
	Burst int
	nets  []netip.Prefix
	roots *x509.CertPool // nil: the system's

	masker atomic.Pointer[maskedValues] // the masker of the last values injected

	once sync.Once // makes tr and rp on first use
	tr   *http.Transport
	rp   *httputil.ReverseProxy
}

// Compile checks r and returns it ready to serve.
func Compile(r *tokenward.GatewayRoute) (*Route, error) {
	c := &Route{GatewayRoute: *r}
	bad := func(format string, args ...any) (*Route, error) {
		return nil, tokenward.Errorf(tokenward.EINVALID, "route %s: "+format, append([]any{tokenward.Printable(r.Name)}, args...)...)
	}
	if err := tokenward.ValidateRouteName(r.Name); err != nil {
		return nil, err
	}
	u, err := url.Parse(r.Upstream)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return bad("upstream must be an http:// or https:// URL")
	case u.User != nil:
		return bad("upstream must not hold a user or password (inject them from secrets)")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return bad("upstream must not have a query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c.upstream = u
	for _, p := range r.SecretPaths() {
		if err := checkSecretPath(p); err != nil {
			return bad("%s", tokenward.ErrorMessage(err))
		}
	}
	if err := c.parseInject(); err != nil {
		return bad("%s", tokenward.ErrorMessage(err))
	}
	if len(r.Allow) == 0 {
		return bad("no allow rule: every call would be refused")
	}
	if len(r.Allow) > MaxAllowRules {
		return bad("more than %d allow rules", MaxAllowRules)
	}
	for _, s := range r.Allow {
		rule, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, rule)
	}
	if c.Rate, c.Burst, err = ParseRate(r.Rate); err != nil {
		return bad("%s", tokenward.ErrorMessage(err))
	}
	for _, s := range r.AllowNets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return bad("allowed network %q is not a CIDR prefix", tokenward.Printable(s))
		}
		c.nets = append(c.nets, p.Masked())
	}
	if r.CABundle != "" {
		c.roots = x509.NewCertPool()
		if !c.roots.AppendCertsFromPEM([]byte(r.CABundle)) {
			return bad("the CA bundle holds no PEM certificate")
		}
	}
	if r.Timeout < 0 {
		return bad("negative timeout")
	}
	return c, nil
}

func checkSecretPath(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return tokenward.Errorf(tokenward.EINVALID, "secret %q: want project/env/NAME", tokenward.Printable(p))
	}
	if err := tokenward.ValidateProjectName(parts[0]); err != nil {
		return err
	}
	if err := tokenward.ValidateEnvName(parts[1]); err != nil {
		return err
	}
	return tokenward.ValidateSecretName(parts[2])
}

// parseInject reads Inject: "header:NAME=TEMPLATE", "query:PARAM[=TEMPLATE]"
// or "basic" (with UserSecret).
func (c *Route) parseInject() error {
	style, spec, _ := strings.Cut(c.Inject, ":")
	c.style = style
	switch style {
	case InjectBasic:
		if spec != "" || c.UserSecret == "" {
			return tokenward.Errorf(tokenward.EINVALID, "basic injection is 'basic' with a user secret (--user-secret) and the password as the secret")
		}
		return nil
	case InjectHeader, InjectQuery:
	default:
		return tokenward.Errorf(tokenward.EINVALID, "inject %q: want header:NAME=TEMPLATE, query:PARAM[=TEMPLATE] or basic", tokenward.Printable(c.Inject))
	}
	if c.UserSecret != "" {
		return tokenward.Errorf(tokenward.EINVALID, "a user secret is only for basic injection")
	}
	key, tmpl, ok := strings.Cut(spec, "=")
	if !ok {
		if style == InjectHeader {
			return tokenward.Errorf(tokenward.EINVALID, "header injection wants header:NAME=TEMPLATE")
		}
		tmpl = placeholder
	}
	if strings.Count(tmpl, placeholder) != 1 {
		return tokenward.Errorf(tokenward.EINVALID, "the template must hold %s exactly once", placeholder)
	}
	if strings.ContainsFunc(tmpl, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return tokenward.Errorf(tokenward.EINVALID, "the template holds a control character")
	}
	if key == "" || len(key) > 128 {
		return tokenward.Errorf(tokenward.EINVALID, "the %s name is empty or too long", style)
	}
	if style == InjectHeader {
		for i := 0; i < len(key); i++ {
			if !validHeaderByte(key[i]) {
				return tokenward.Errorf(tokenward.EINVALID, "header name %q is not a token", tokenward.Printable(key))
			}
		}
		key = textproto.CanonicalMIMEHeaderKey(key)
		switch key {
		case "Host", "Connection", "Content-Length", "Transfer-Encoding", "Te", "Trailer", "Upgrade", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate":
			return tokenward.Errorf(tokenward.EINVALID, "header %s cannot carry a credential", key)
		}
	}
	c.key, c.template = key, tmpl
	return nil
}

func validHeaderByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// ParseRate reads a route's rate: "N/s", "N/m" or "N/h" with N a positive
// whole number, which is also the burst; "" is no bound.
func ParseRate(s string) (perSecond float64, burst int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 1e9 {
		return 0, 0, tokenward.Errorf(tokenward.EINVALID, "rate %q: want N/s, N/m or N/h, N a positive whole number", tokenward.Printable(s))
	}
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if per == 0 {
		return 0, 0, tokenward.Errorf(tokenward.EINVALID, "rate %q: the unit must be s, m or h", tokenward.Printable(s))
	}
	return float64(n) / per, n, nil
}

// Allows reports whether the route's rules allow method on segs.
func (c *Route) Allows(method string, segs []string) bool { return Allowed(c.rules, method, segs) }

// Refuses returns the first method r may be taken for (Methods: its own,
// or one an override names) that the route's rules do not allow on segs.
func (c *Route) Refuses(r *http.Request, segs []string) (method string, refused bool) {
	for _, m := range Methods(r) {
		if !c.Allows(m, segs) {
			return m, true
		}
	}
	return "", false
}

// transport is the route's connection pool: every connection through the
// egress guard with the route's allowed networks, TLS verified against the
// route's roots (or the system's), no proxy from the environment, no
// transparent decompression (what is masked must be what is sent on).
func (c *Route) transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = dialer(c.nets).DialContext
	t.TLSClientConfig = &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = c.Timeout
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = DefaultTimeout
	}
	t.ForceAttemptHTTP2 = true
	return t
}

// RetryAfter is the whole seconds, at least 1, a caller waits for d.
func RetryAfter(d time.Duration) int64 { return max(int64(math.Ceil(d.Seconds())), 1) }
