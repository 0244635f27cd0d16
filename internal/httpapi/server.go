// Package httpapi is tokenward's HTTP server: JSON under /v1, bearer-token
// authentication, grant checks (in internal/core), strict input limits and
// one mapping from error codes to statuses.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/gateway"
	"github.com/tokenward/tokenward/internal/vaultapi"
)

// Server serves the API over a core.Core.
type Server struct {
	Core   *core.Core
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies. Zero: room for a value of
	// Core.MaxValueSize in the worst JSON escaping.
	MaxBodyBytes int64
	// Audit, when set, records each request's entry before the response is
	// written; when it fails, the request fails (fail-closed).
	Audit    func(ctx context.Context, e *tokenward.AuditEntry) error
	AuditLog *AuditLog // the trail the audit routes read (audit.go)
	Metrics  *Metrics  // request metrics, when set (metrics.go)
	// TrustedProxies are the load balancers and proxies whose
	// X-Forwarded-For is believed (clientIP); empty: none, the peer is the
	// client.
	TrustedProxies []netip.Prefix
	// TokenLimit bounds each token's requests, AuthFailureLimit each
	// client address's failed authentications (ratelimit.go); zero: none.
	TokenLimit, AuthFailureLimit Limit
	// Dynamic serves dynamic sources and leases (dynamic.go); nil: off.
	Dynamic *dynamic.Engine
	// Gateway serves calls through gateway routes under /gw/ (gateway.go);
	// nil: such calls are refused.
	Gateway *gateway.Gateway

	monitor   monitorState // state of the monitoring routes (monitor.go)
	bulk      bulkJobs     // bulk rotations running or recently finished (rotation_bulk.go)
	unready   atomic.Bool  // the last readiness check failed (ready.go)
	limiter   limiters     // TokenLimit and AuthFailureLimit's buckets (ratelimit.go)
	gwLimits  routeLimits  // gateway routes' per-token buckets (gateway.go)
	envFields fieldsMemo   // environment fetches' secret fields (jsonappend.go)

	routes []route
	mux    *http.ServeMux
	vault  vaultRoutes // the Vault API (vault.go)
}

// route is one API operation.
type route struct {
	method, pattern string
	action          string // audit action, e.g. "secret.read"
	public          bool   // served without a token
	audited         bool   // public, but audited all the same (OIDC login)
	handle          func(*call) (int, any, error)
	raw             http.HandlerFunc // served as is, for non-JSON routes
	vault           bool             // a Vault API route (vault.go): matched by vaultapi.Parse, Vault's token header, statuses and errors
}

// call is one request as a handler sees it.
type call struct {
	r        *http.Request
	reqID    string
	tok      *tokenward.Token
	resource string                      // what the request touched, for the audit entry
	meta     map[string]string           // non-secret facts for the audit entry
	audit    func(*tokenward.AuditEntry) // last word on the entry (detailed denial reason, CI facts); never a secret
}

// NewServer returns a Server; its handler is ready to serve.
func NewServer(c *core.Core, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{Core: c, Logger: logger.WithGroup("http")}
	s.routes = s.apiRoutes()
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		if rt.vault {
			continue // vault.go serves them
		}
		if rt.raw != nil {
			s.mux.Handle(rt.method+" "+rt.pattern, rt.raw)
			continue
		}
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.vault = s.newVaultRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The path is the caller's, but an error can land in a CI log: a
		// token pasted into it is not repeated.
		writeError(w, tokenward.Errorf(tokenward.ENOTFOUND, "no such route: %s %s", tokenward.Printable(r.Method), audit.RedactTokens(tokenward.Printable(r.URL.Path))))
	})
	return s
}

// Routes returns "METHOD /pattern" for every API route (for the OpenAPI
// conformance test and the docs).
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.pattern
	}
	return out
}

// The values of the headers every API answer carries, shared by all of
// them: Header.Set made a slice for each, three allocations per request.
// net/http only reads them, and Set and Add replace rather than write into
// them (len == cap), so sharing is safe as long as nothing assigns to an
// element of a header's value slice, which nothing here does.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
	headerNosniff = []string{"nosniff"}
)

// setSafetyHeaders marks an answer as not to be cached and not to be
// sniffed as another type than its Content-Type.
func setSafetyHeaders(h http.Header) {
	h["X-Content-Type-Options"] = headerNosniff
	h["Cache-Control"] = headerNoStore
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, gatewayPrefix) {
		// The upstream's answer, with its own caching headers; the raw
		// path is judged by gateway.CheckPath, not cleaned by the mux.
		r.Pattern = gatewayPattern
		s.serveWith(http.HandlerFunc(s.serveGateway), w, r)
		return
	}
	setSafetyHeaders(w.Header())
	if h, ok := s.vaultHandler(r); ok {
		s.serveWith(h, w, r)
		return
	}
	if err := s.rawPathError(r); err != nil {
		writeError(w, err)
		return
	}
	s.serveWith(s.mux, w, r)
}

func (s *Server) serveWith(h http.Handler, w http.ResponseWriter, r *http.Request) {
	if s.Metrics != nil {
		s.Metrics.serve(h, w, r)
		return
	}
	h.ServeHTTP(w, r)
}

func (s *Server) maxBody() int64 {
	if s.MaxBodyBytes > 0 {
		return s.MaxBodyBytes
	}
	return int64(s.Core.MaxValueSize)*6 + 16<<10
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clientIP is the address of the client: the peer, unless the peer is a
// trusted proxy (TrustedProxies), and then the right-most address of
// X-Forwarded-For that is not one — the one the nearest trusted proxy
// saw. Addresses left of it are the client's own say and not believed. A
// trusted peer that sends no usable header is the client.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(s.TrustedProxies) == 0 || !s.trusted(host) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var hop string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				hop, list = list[j+1:], list[:j]
			} else {
				hop, list = list, ""
			}
			addr, err := parseHop(strings.TrimSpace(hop))
			if err != nil {
				return host // a malformed hop: believe only the peer
			}
			if !s.trusted(addr.Unmap().String()) {
				return addr.Unmap().String()
			}
		}
	}
	return host
}

// parseHop reads one hop of X-Forwarded-For: an address, or an address
// and port as some load balancers write it (Azure Application Gateway:
// 203.0.113.9:51234, [2001:db8::7]:51234). Read as malformed, such a hop
// made every client behind the balancer one address, with one budget of
// failed authentications that any of them could spend for all.
func parseHop(hop string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(hop)
	if err != nil {
		ap, perr := netip.ParseAddrPort(hop)
		if perr != nil {
			return netip.Addr{}, err
		}
		addr = ap.Addr()
	}
	return addr, nil
}

func (s *Server) trusted(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := newRequestID()
		w.Header().Set("X-Request-Id", reqID)
		ip := s.clientIP(r)
		c := &call{r: r, reqID: reqID}
		status, writeErr, token := statusOf, writeError, bearer
		if rt.vault {
			status, writeErr, token = vaultStatus, writeVaultError, vaultapi.Token
		}
		var ok int
		var body any
		var err error
		defer func() {
			if p := recover(); p != nil {
				// The panic value is not logged: it could hold request data.
				s.Logger.Error("panic in handler", "route", rt.pattern, "request_id", reqID)
				writeErr(w, errors.New("panic"))
			}
		}()
		if !rt.public {
			c.tok, err = s.authenticate(r.Context(), w, token(r), ip)
		}
		if err == nil {
			if r.Body != http.NoBody { // a GET's: nothing to limit
				r.Body = http.MaxBytesReader(w, r.Body, s.maxBody())
			}
			ok, body, err = rt.handle(c)
		}
		err = clientGone(r, err)
		if s.Audit != nil && (!rt.public || rt.audited) {
			e := &tokenward.AuditEntry{
				Time: s.Core.Now().UTC(), RequestID: reqID, Action: rt.action, Resource: c.resource,
				Outcome: outcome(err), Reason: reason(err), Status: status(err, ok),
				SourceIP: ip, UserAgent: trunc(r.UserAgent(), 256), Meta: c.meta,
			}
			fillAuditToken(e, c.tok, err, r)
			if c.audit != nil {
				c.audit(e)
			}
			if aerr := s.Audit(auditContext(r), e); aerr != nil {
				writeErr(w, s.auditRefused(reqID, aerr))
				return
			}
		}
		if err != nil {
			if tokenward.ErrorCode(err) == tokenward.EINTERNAL {
				s.Logger.Error("request failed", "route", rt.pattern, "request_id", reqID, "err", err)
			}
			writeErr(w, err)
		} else {
			writeJSON(w, ok, body)
		}
		if s.Logger.Enabled(r.Context(), slog.LevelDebug) { // its arguments allocated on every request
			s.Logger.Debug("request", "method", r.Method, "route", rt.pattern, "status", status(err, ok), "request_id", reqID, "duration", time.Since(start))
		}
	})
}

// auditRefused logs and answers a request the audit hook could not record
// (fail-closed). When the cause is a database that cannot be reached, the
// message says so — that is what a client waits out — and the line is at
// debug level: the outage is logged once where it is seen (the audit
// ingester, the PostgreSQL server lock), not once per refused request.
func (s *Server) auditRefused(reqID string, aerr error) error {
	const refused = "the audit log cannot record this request; refused"
	if tokenward.ErrorCode(aerr) == tokenward.EUNAVAILABLE {
		s.Logger.Debug("audit record failed; refusing request", "request_id", reqID, "err", aerr)
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "%s: %s", refused, tokenward.ErrorMessage(aerr))
	}
	s.Logger.Error("audit record failed; refusing request", "request_id", reqID, "err", aerr)
	return tokenward.Errorf(tokenward.EUNAVAILABLE, refused)
}

// errClientGone answers a request whose client went away before the answer:
// nobody reads it, and it is no server fault, so it is not logged as one.
// The audit entry and the metrics record it as 499, as nginx does.
var errClientGone = tokenward.Errorf(tokenward.ECANCELED, "the client closed the request before the answer")

// clientGone returns errClientGone for an error caused by the client
// cancelling r (it closed the connection or reset the stream), and err
// otherwise.
func clientGone(r *http.Request, err error) error {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return errClientGone
	}
	return err
}

// auditContext is the context an audit entry is recorded under: r's values
// without its cancellation. What a request did is recorded even when its
// client has gone away before the answer.
func auditContext(r *http.Request) context.Context {
	return context.WithoutCancel(r.Context())
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func outcome(err error) string {
	switch tokenward.ErrorCode(err) {
	case "":
		return tokenward.OutcomeAllowed
	case tokenward.EUNAUTHORIZED, tokenward.EFORBIDDEN, tokenward.ERATELIMITED:
		return tokenward.OutcomeDenied
	}
	return tokenward.OutcomeError
}

func reason(err error) string {
	if err == nil {
		return ""
	}
	return tokenward.ErrorMessage(err)
}

// statusClientClosed is nginx's status for a request its client closed.
const statusClientClosed = 499

// statusOf is the one mapping from error codes to HTTP statuses.
func statusOf(err error, ok int) int {
	switch tokenward.ErrorCode(err) {
	case "":
		return ok
	case tokenward.EINVALID:
		return http.StatusBadRequest
	case tokenward.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case tokenward.EFORBIDDEN:
		return http.StatusForbidden
	case tokenward.ENOTFOUND:
		return http.StatusNotFound
	case tokenward.ENOTALLOWED:
		return http.StatusMethodNotAllowed
	case tokenward.ECONFLICT:
		return http.StatusConflict
	case tokenward.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case tokenward.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case tokenward.ERATELIMITED:
		return http.StatusTooManyRequests
	case tokenward.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case tokenward.ECANCELED:
		return statusClientClosed
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	var b api.ErrorBody
	b.Error.Code = tokenward.ErrorCode(err)
	b.Error.Message = tokenward.ErrorMessage(err)
	if b.Error.Code == tokenward.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tokenward"`)
	}
	writeJSON(w, statusOf(err, 0), b)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if p, plain := body.(interface{ wipe() }); plain {
		defer p.wipe() // a body of plaintexts: zeroed once written
	}
	w.Header()["Content-Type"] = headerJSON
	if a, ok := body.(jsonAppender); ok {
		bp := jsonBufs.Get().(*[]byte)
		b, ok := a.appendJSON((*bp)[:0])
		if ok {
			b = append(b, '\n')
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(status)
			w.Write(b) // #nosec G705 -- a JSON body served as application/json, never HTML
		}
		releaseJSONBuf(bp, b)
		if ok {
			return
		}
	}
	w.WriteHeader(status)
	if body != nil {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.Encode(body)
	}
}

// decode reads a JSON body strictly: JSON content type, size limit,
// no unknown fields, one value and nothing after it.
func decode(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return tokenward.Errorf(tokenward.EUNSUPPORTED, "request body must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return tokenward.Errorf(tokenward.EINVALID, "malformed JSON: data after the request object")
	}
	return nil
}

// decodeError explains a JSON decoding failure without echoing the input.
func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var te2 *tokenward.Error
	switch {
	case errors.As(err, &mbe):
		return tokenward.Errorf(tokenward.ETOOLARGE, "request body is larger than %d bytes", mbe.Limit)
	case errors.As(err, &te2):
		return te2
	case errors.As(err, &se):
		return tokenward.Errorf(tokenward.EINVALID, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return tokenward.Errorf(tokenward.EINVALID, "malformed JSON: field %q must be %s", te.Field, te.Type)
	case errors.Is(err, io.EOF):
		return tokenward.Errorf(tokenward.EINVALID, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tokenward.Errorf(tokenward.EINVALID, "malformed JSON: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field name is the client's text: bounded and printable, as
		// the message is also the audit entry's reason.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return tokenward.Errorf(tokenward.EINVALID, "unknown field %q", tokenward.Printable(name))
	}
	return tokenward.Errorf(tokenward.EINVALID, "malformed JSON")
}

func validUTF8(field, s string) error {
	if !utf8.ValidString(s) {
		return tokenward.Errorf(tokenward.EINVALID, "%s is not valid UTF-8", field)
	}
	return nil
}

// NewHTTPServer returns an http.Server with timeouts that bound slow clients.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
