package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/egress"
	"github.com/tokenward/tokenward/internal/inject"
)

// RouteSource is where the gateway reads routes (a
// tokenward.GatewayRouteStore has this).
type RouteSource interface {
	GatewayRoute(ctx context.Context, name string) (*tokenward.GatewayRoute, error)
}

// SecretSource opens the CURRENT value of a secret (project/env/NAME) on
// the server's own authority: the caller of a route holds a gateway
// grant, not a read grant.
type SecretSource interface {
	GatewaySecret(ctx context.Context, path string) ([]byte, error)
}

// Gateway forwards calls through routes. Its fields are set before first
// use.
type Gateway struct {
	Routes  RouteSource
	Secrets SecretSource
	// Clock, when set, is the store's change clock: a route read at one
	// generation is served from memory until the clock moves (a route
	// changed on any server moves it). Nil: every call reads the route.
	Clock  tokenward.ChangeClock
	Logger *slog.Logger
	// WriteTimeout bounds each write of an answer to its caller (0:
	// DefaultWriteTimeout). A call lifts the server's own write timeout,
	// which bounds a whole answer, so that a stream may last; this keeps a
	// caller that stops reading from holding the call, and its upstream
	// connection, for good: the write that waits longer is cut off.
	WriteTimeout time.Duration
	// RecheckInterval is how often a call's Recheck is asked while its
	// response streams (0: DefaultRecheckInterval).
	RecheckInterval time.Duration

	mu    sync.Mutex
	cache map[string]*cached
}

// DefaultWriteTimeout is a Gateway's WriteTimeout when it sets none.
const DefaultWriteTimeout = time.Minute

// DefaultRecheckInterval is a Gateway's RecheckInterval when it sets none.
const DefaultRecheckInterval = time.Second

type cached struct {
	gen    uint64
	ok     bool // gen is trustworthy
	stored tokenward.GatewayRoute
	route  *Route
}

// Route returns the named route, ready to serve; ENOTFOUND if none.
func (g *Gateway) Route(ctx context.Context, name string) (*Route, error) {
	var gen uint64
	var ok bool
	if g.Clock != nil {
		gen, ok = g.Clock.Generation()
	}
	g.mu.Lock()
	e := g.cache[name]
	g.mu.Unlock()
	if ok && e != nil && e.ok && e.gen == gen {
		return e.route, nil
	}
	stored, err := g.Routes.GatewayRoute(ctx, name)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		g.mu.Lock()
		if old := g.cache[name]; old != nil {
			delete(g.cache, name)
			old.route.close()
		}
		g.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	var rt *Route
	if e != nil && reflect.DeepEqual(e.stored, *stored) {
		rt = e.route // unchanged: keep its connections
	} else if rt, err = Compile(stored); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if g.cache == nil {
		g.cache = map[string]*cached{}
	}
	if old := g.cache[name]; old != nil && old.route != rt {
		old.route.close()
	}
	g.cache[name] = &cached{gen: gen, ok: ok, stored: *stored, route: rt}
	g.mu.Unlock()
	return rt, nil
}

// Close drops every cached route's idle connections.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, e := range g.cache {
		e.route.close()
		delete(g.cache, name)
	}
}

// Call is one call through a route: what the caller of Forward says, and
// what Forward found.
type Call struct {
	Route *Route
	// Path is the escaped path after /gw/<route>, checked by CheckPath.
	Path string
	// OnDone, when set, is called once the upstream's response body has
	// been read to its end, before the end of the response is sent: an
	// error aborts the response, so the caller sees it incomplete (the
	// audit entry of a call is recorded here, fail-closed).
	OnDone func(*Call) error

	Status int // the upstream's status, or the gateway's for Err
	// BytesIn counts request body bytes sent upstream (read it with
	// BytesSent: the transport writes the body on a goroutine of its own).
	BytesIn  atomic.Int64
	BytesOut int64 // response body bytes sent to the caller, after masking
	// Err is why the call failed before a response started (nothing was
	// written): a *tokenward.Error whose message holds no secret and no
	// upstream URL. Status is 502, 503 or 504 then.
	Err error
	// Aborted says the response was cut off after it started (the
	// upstream or the caller failed mid-body, or OnDone failed); the
	// caller of Forward ends the handler with panic(http.ErrAbortHandler).
	Aborted bool
	// Recheck, when set, says whether the call may go on: a stream (a
	// download, server-sent events) outlives the check made when it
	// began, and its token may be revoked or expire meanwhile. It is
	// asked before a write of the response body once the Gateway's
	// RecheckInterval has passed since the first write or the last ask;
	// an error cuts the response off (Aborted), kept in Ended.
	Recheck func() error
	// Ended is the error of Recheck that cut the response off.
	Ended error
}

type callKey struct{}

// callState is what the proxy's hooks need of a call.
type callState struct {
	c      *Call
	method string
	inject func(out *http.Request)
	masker *inject.Masker
	done   bool
}

// Forward sends r through c.Route. r's path and grant have been checked
// by the caller. It reads the route's secrets (their CURRENT versions),
// removes the caller's credential, injects the route's, and streams both
// bodies; the response's headers and body are masked for the injected
// values. It writes the response unless c.Err is set.
func (g *Gateway) Forward(w http.ResponseWriter, r *http.Request, c *Call) {
	st, err := g.prepare(r.Context(), r.Method, c)
	if err != nil {
		c.Err, c.Status = err, http.StatusBadGateway
		return
	}
	// A stream (a download, server-sent events) outlives the server's
	// write and read deadlines: the upstream's timeouts bound the call,
	// and each write to the caller is bounded on its own (callWriter).
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	timeout := g.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	every := g.RecheckInterval
	if every <= 0 {
		every = DefaultRecheckInterval
	}
	cw := &callWriter{ResponseWriter: w, rc: rc, masker: st.masker, timeout: timeout, c: c, every: every}
	defer func() {
		// What the server writes once the proxy is done (the end of a
		// chunked answer, an error) gets a write's time too, however
		// long the stream was idle before it ended.
		cw.bound()
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			c.Aborted = true
		}
	}()
	c.Route.proxy().ServeHTTP(cw, r.WithContext(context.WithValue(r.Context(), callKey{}, st)))
}

// callWriter is the caller's ResponseWriter as the proxy writes to it. It
// masks the headers of the 1xx answers (103 Early Hints…) that
// ReverseProxy passes on as they come, before ModifyResponse sees
// anything; and it bounds each write and flush by timeout, set just
// before it, so that a stream may be idle for any time between writes but
// a caller that takes none of a write for timeout is cut off.
type callWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	masker  *inject.Masker
	timeout time.Duration
	// c.Recheck is asked every that often while the body streams, from
	// the first write on (next: zero until then).
	c     *Call
	every time.Duration
	next  time.Time
}

// bound gives the next write timeout to complete.
func (w *callWriter) bound() { w.boundAt(time.Now()) }

func (w *callWriter) boundAt(now time.Time) { _ = w.rc.SetWriteDeadline(now.Add(w.timeout)) }

// recheck asks c.Recheck whether the call may go on, when it is due at
// now; an error ends the call (Write returns it, and the proxy aborts).
func (w *callWriter) recheck(now time.Time) error {
	switch {
	case w.c == nil || w.c.Recheck == nil:
		return nil
	case w.c.Ended != nil:
		return w.c.Ended
	case w.next.IsZero():
		w.next = now.Add(w.every)
		return nil
	case now.Before(w.next):
		return nil
	}
	w.next = now.Add(w.every)
	if err := w.c.Recheck(); err != nil {
		w.c.Ended = err
		return err
	}
	return nil
}

func (w *callWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		for _, vs := range w.Header() {
			for i, v := range vs {
				vs[i] = maskString(w.masker, v)
			}
		}
		w.bound() // written at once
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *callWriter) Write(p []byte) (int, error) {
	now := time.Now()
	if err := w.recheck(now); err != nil {
		return 0, err
	}
	w.boundAt(now)
	return w.ResponseWriter.Write(p)
}

// FlushError is how http.ResponseController, and so ReverseProxy,
// flushes w.
func (w *callWriter) FlushError() error {
	w.bound()
	return w.rc.Flush()
}

// Unwrap lets http.ResponseController (deadlines) reach w's own.
func (w *callWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (g *Gateway) prepare(ctx context.Context, method string, c *Call) (*callState, error) {
	rt := c.Route
	value, err := g.Secrets.GatewaySecret(ctx, rt.Secret)
	if err != nil {
		return nil, secretError(rt.Secret, err)
	}
	st := &callState{c: c, method: method}
	values := map[string]string{"value": string(value)}
	switch rt.style {
	case InjectBasic:
		user, err := g.Secrets.GatewaySecret(ctx, rt.UserSecret)
		if err != nil {
			return nil, secretError(rt.UserSecret, err)
		}
		values["user"] = string(user)
		values["basic"] = string(user) + ":" + string(value)
		values["header"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(values["basic"]))
		st.inject = func(out *http.Request) { out.SetBasicAuth(string(user), string(value)) }
	case InjectHeader:
		rendered := strings.Replace(rt.template, placeholder, string(value), 1)
		if strings.ContainsAny(rendered, "\r\n\x00") {
			return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "the value of %s cannot go in a header (it holds a line break or NUL)", rt.Secret)
		}
		values["header"] = rendered
		st.inject = func(out *http.Request) { out.Header.Set(rt.key, rendered) }
	case InjectQuery:
		rendered := strings.Replace(rt.template, placeholder, string(value), 1)
		values["query"] = rendered
		st.inject = func(out *http.Request) {
			q := out.URL.Query()
			q.Set(rt.key, rendered) // replaces any the caller sent
			out.URL.RawQuery = q.Encode()
		}
	}
	st.masker = rt.maskerFor(values)
	return st, nil
}

// maskedValues is a masker with the digest of the values it masks.
type maskedValues struct {
	digest [sha256.Size]byte
	masker *inject.Masker
}

// maskerFor returns the masker of values, built once per set of values
// (building one is most of a call's cost otherwise): the route keeps the
// last one, and a rotation's new value makes a new one.
func (c *Route) maskerFor(values map[string]string) *inject.Masker {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(h, "%d:%s=%d:%s;", len(k), k, len(values[k]), values[k])
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	if mv := c.masker.Load(); mv != nil && subtle.ConstantTimeCompare(mv.digest[:], d[:]) == 1 {
		return mv.masker
	}
	mv := &maskedValues{digest: d, masker: inject.NewMasker(values, 0)}
	c.masker.Store(mv)
	return mv.masker
}

func secretError(path string, err error) error {
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "the route's secret %s does not exist", path)
	}
	return tokenward.Errorf(tokenward.EUNAVAILABLE, "the route's secret %s cannot be read", path)
}

// proxy is the route's reverse proxy, made on first use.
func (c *Route) proxy() *httputil.ReverseProxy {
	c.once.Do(c.init)
	return c.rp
}

func (c *Route) init() {
	c.tr = c.transport()
	c.rp = &httputil.ReverseProxy{
		Rewrite:   c.rewrite,
		Transport: c.tr,
		// 0: ReverseProxy flushes event streams and answers of unknown
		// length (every streamed one: see modifyResponse) after every
		// write, and an answer of known length once, at its end.
		FlushInterval:  0,
		BufferPool:     buffers{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   proxyError,
		// The proxy's own log lines (a body copy error) would name
		// nothing useful; the caller audits every call instead.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

func (c *Route) close() {
	c.once.Do(c.init) // so tr is never read while being made
	c.tr.CloseIdleConnections()
}

func stateOf(r *http.Request) *callState { return r.Context().Value(callKey{}).(*callState) }

// rewrite makes the outgoing request: the upstream's URL with the
// checked path, the caller's query, X-Forwarded-* from this hop (the
// caller's own are dropped by ReverseProxy before Rewrite), the caller's
// credential removed and the route's injected.
func (c *Route) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In)
	out := pr.Out
	u := *c.upstream
	u.RawPath = c.upstream.EscapedPath() + st.c.Path
	u.Path, _ = url.PathUnescape(u.RawPath) // CheckPath decoded it already
	u.RawQuery = pr.In.URL.RawQuery
	out.URL = &u
	out.Host = ""
	pr.SetXForwarded()
	// ReverseProxy puts back the caller's Upgrade after dropping the
	// hop-by-hop headers; upgrades are not passed through (their frames
	// could not be masked), so the upstream gets a plain request.
	out.Header.Del("Upgrade")
	out.Header.Del("Connection")
	out.Header.Del("Authorization")
	dropConsoleCookies(out.Header)
	// With these, some upstreams (IIS's URL Rewrite; Symfony and Zend
	// Framework before CVE-2018-14773) act on another path than the one
	// the allow rules were checked against.
	dropHeaders(out.Header, pathOverrideHeaders)
	// What is masked must be what is sent on: no compressed answers.
	out.Header.Set("Accept-Encoding", "identity")
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &countingBody{ReadCloser: out.Body, n: &st.c.BytesIn}
	}
	st.inject(out)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// modifyResponse masks the injected values in the response's headers
// and, as it streams, its body and trailers.
func modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// Asked for nothing of the kind (rewrite drops Upgrade): the
		// switched connection is no body to read to its end.
		return errSwitched
	}
	st := stateOf(resp.Request)
	st.c.Status = resp.StatusCode
	for k, vs := range resp.Header {
		for i, v := range vs {
			vs[i] = maskString(st.masker, v)
		}
		resp.Header[k] = vs
	}
	if st.method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return nil
	}
	mb := &maskedBody{src: resp.Body, resp: resp, st: st, buf: buffers{}.Get()}
	mb.red = st.masker.NewRedactor(countWriter{&mb.out, &st.c.BytesOut})
	resp.Body = mb
	if buffered(resp) {
		// A small answer of known length is read and masked whole, and
		// sent with its masked length in one write: flushing a streamed
		// answer after every write was most of a small call's cost.
		mb.readAll()
		resp.ContentLength = int64(mb.out.Len())
		resp.Header.Set("Content-Length", strconv.Itoa(mb.out.Len()))
		return nil
	}
	// Masking may change the length: the answer goes chunked (and, of
	// unknown length, is flushed as it comes: ReverseProxy's own rule).
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
}

// maxBuffered is the largest answer modifyResponse reads whole.
const maxBuffered = 64 << 10

// buffered reports whether resp is read whole before it is sent: of known
// length up to maxBuffered, without trailers, and not an event stream
// (whose events must pass as they come, whatever it declares).
func buffered(resp *http.Response) bool {
	if resp.ContentLength < 0 || resp.ContentLength > maxBuffered || len(resp.Trailer) > 0 {
		return false
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt != "text/event-stream"
}

func maskString(m *inject.Masker, s string) string {
	var b strings.Builder
	red := m.NewRedactor(&b)
	red.Write([]byte(s))
	red.Close()
	return b.String()
}

type countWriter struct {
	b *bytes.Buffer
	n *int64
}

func (w countWriter) Write(p []byte) (int, error) {
	*w.n += int64(len(p))
	return w.b.Write(p)
}

// maskedBody streams the upstream's body through a redactor: it holds
// back only bytes that may begin an injected value (so an event of a
// stream goes out as soon as it arrives), and memory stays at one read
// buffer whatever the body's length.
type maskedBody struct {
	src  io.ReadCloser
	resp *http.Response
	st   *callState
	red  *inject.Redactor
	buf  []byte
	out  bytes.Buffer
	err  error
}

// readAll reads and masks the whole body now, and runs finish (the
// call's audit) before any of it is sent. If the upstream fails, or
// finish does, nothing of the body is sent: the first Read returns the
// error, and the proxy aborts the response before its header goes out.
func (b *maskedBody) readAll() {
	for {
		n, err := b.src.Read(b.buf)
		if n > 0 {
			b.red.Write(b.buf[:n]) // into b.out, which does not fail
		}
		if err == nil {
			continue
		}
		b.red.Close()
		if err == io.EOF {
			err = b.finish()
		}
		if err != io.EOF {
			b.out.Reset()
			b.st.c.BytesOut = 0 // nothing of it is sent
		}
		b.err = err
		return
	}
}

func (b *maskedBody) Read(p []byte) (int, error) {
	for b.out.Len() == 0 {
		if b.err != nil {
			return 0, b.err
		}
		n, err := b.src.Read(b.buf)
		if n > 0 {
			b.red.Write(b.buf[:n]) // into b.out, which does not fail
		}
		if err != nil {
			b.red.Close()
			if err == io.EOF {
				err = b.finish()
			}
			b.err = err
		}
	}
	return b.out.Read(p)
}

// finish masks the trailers, which the proxy sends after the body, and
// runs the call's OnDone; its error ends the response incomplete.
func (b *maskedBody) finish() error {
	for k, vs := range b.resp.Trailer {
		for i, v := range vs {
			vs[i] = maskString(b.st.masker, v)
		}
		b.resp.Trailer[k] = vs
	}
	b.st.done = true
	if b.st.c.OnDone != nil {
		if err := b.st.c.OnDone(b.st.c); err != nil {
			return err
		}
	}
	return io.EOF
}

func (b *maskedBody) Close() error {
	if b.buf != nil {
		buffers{}.Put(b.buf)
		b.buf = nil
	}
	return b.src.Close()
}

// bufPool holds the copy buffers of bodies: one call's worth of garbage
// otherwise, twice (the proxy's copy and the masked read).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// buffers is an httputil.BufferPool over bufPool.
type buffers struct{}

func (buffers) Get() []byte  { return *bufPool.Get().(*[]byte) }
func (buffers) Put(b []byte) { bufPool.Put(&b) }

// consoleCookies are the web console's session cookies
// (internal/console/session.go): a caller that sends one with its bearer
// token must not hand the upstream a session on tokenward.
var consoleCookies = map[string]bool{"__Host-tokenward_console": true, "tokenward_console": true}

// dropConsoleCookies removes the console's session cookies from h's
// Cookie headers and keeps the rest.
func dropConsoleCookies(h http.Header) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var keep []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if p := strings.TrimSpace(part); p != "" && !consoleCookies[name] {
				keep = append(keep, p)
			}
		}
	}
	h.Del("Cookie")
	if len(keep) > 0 {
		h.Set("Cookie", strings.Join(keep, "; "))
	}
}

// pathOverrideHeaders are request headers that name the path an upstream
// acts on instead of the request's own.
var pathOverrideHeaders = []string{"X-Original-Url", "X-Rewrite-Url"}

// dropHeaders removes from h the headers of names, however spelt (oneOf).
func dropHeaders(h http.Header, names []string) {
	for k := range h {
		if oneOf(k, names) {
			delete(h, k)
		}
	}
}

// errSwitched is ModifyResponse's refusal of a 101 answer.
var errSwitched = errors.New("gateway: the upstream switched protocols")

// proxyError records why a call failed before its response started. The
// message never holds the upstream error's text: a URL in it may carry an
// injected query parameter.
func proxyError(_ http.ResponseWriter, r *http.Request, err error) {
	c := stateOf(r).c
	var ne net.Error
	switch {
	case errors.Is(err, egress.ErrBlocked):
		c.Status = http.StatusBadGateway
		c.Err = tokenward.Errorf(tokenward.EUNAVAILABLE, "the upstream's address is refused by the gateway's egress policy (a route may allow an address range with --allow-net)")
	case errors.Is(err, errSwitched):
		c.Status = http.StatusBadGateway
		c.Err = tokenward.Errorf(tokenward.EUNAVAILABLE, "the upstream switched protocols; the gateway does not pass upgrades (WebSocket) through")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		c.Status = 499
		c.Err = tokenward.Errorf(tokenward.ECANCELED, "the client closed the request before the answer")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		c.Status = http.StatusGatewayTimeout
		c.Err = tokenward.Errorf(tokenward.EUNAVAILABLE, "the upstream did not answer in time")
	default:
		c.Status = http.StatusBadGateway
		c.Err = tokenward.Errorf(tokenward.EUNAVAILABLE, "the upstream cannot be reached or gave no valid answer")
	}
}
