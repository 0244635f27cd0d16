package httpapi

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
)

// AuditLog is what the audit routes read: the store holding the trail and
// the public key its checkpoints are signed with.
type AuditLog struct {
	Store interface {
		audit.Source
		audit.Searcher
	}
	PublicKey ed25519.PublicKey
	// PollInterval is how often a waiting tail request looks for new
	// entries (default 200 ms). Polling the store, not a signal from this
	// process, also sees entries written by other servers sharing it.
	PollInterval time.Duration
	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// Flush, when set, waits until every entry recorded so far is in Store
	// (the audit journal stores entries a few milliseconds after the
	// answer); the routes call it before they read.
	Flush func(context.Context) error
}

// flush brings the store up to date with the entries recorded so far.
func (al *AuditLog) flush(ctx context.Context) error {
	if al.Flush == nil {
		return nil
	}
	if err := al.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "the audit store is not recording entries; try again later")
	}
	return nil
}

// MaxTailWait bounds ?wait= on GET /v1/audit/entries; it stays well under
// the HTTP server's write timeout.
const MaxTailWait = 30 * time.Second

// auditRoutes are the routes that read the audit trail. Each is audited
// itself (reading the trail is an event worth recording).
func (s *Server) auditRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/audit/entries", action: "audit.search", handle: s.searchAudit},
		{method: "GET", pattern: "/v1/audit/export", action: "audit.export", raw: s.exportAudit},
		{method: "GET", pattern: "/v1/audit/verify", action: "audit.verify", handle: s.verifyAudit},
		{method: "GET", pattern: "/v1/audit/key", action: "audit.key", handle: s.auditKey},
	}
}

// Record records an entry for something other than an API request (a
// rotation step, a scheduled revocation) through the same hook as requests:
// the chain, every sink, and whatever wraps the hook (monitoring). It
// returns nil when no audit hook is set.
func (s *Server) Record(ctx context.Context, e *tokenward.AuditEntry) error {
	if s.Audit == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return s.Audit(ctx, e)
}

func (s *Server) auditLog() (*AuditLog, error) {
	if s.AuditLog == nil || s.AuditLog.Store == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "this server keeps no audit trail")
	}
	return s.AuditLog, nil
}

// parseAuditQuery reads the search parameters of a request.
func parseAuditQuery(r *http.Request) (audit.Query, time.Duration, error) {
	v := r.URL.Query()
	q := audit.Query{Token: v.Get("token"), Resource: v.Get("resource"), Action: v.Get("action"), Outcome: v.Get("outcome")}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, 0, tokenward.Errorf(tokenward.EINVALID, "%s must be an RFC 3339 time", name)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int64{"after": &q.After, "before": &q.Before} {
		if s := v.Get(name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return q, 0, tokenward.Errorf(tokenward.EINVALID, "%s must be a whole number of 0 or more", name)
			}
			*dst = n
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.MaxQueryLimit {
			return q, 0, tokenward.Errorf(tokenward.EINVALID, "limit must be from 1 to %d", audit.MaxQueryLimit)
		}
		q.Limit = n
	}
	switch v.Get("order") {
	case "", "oldest":
	case "newest":
		q.Newest = true
	default:
		return q, 0, tokenward.Errorf(tokenward.EINVALID, "order must be oldest or newest")
	}
	var wait time.Duration
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > MaxTailWait {
			return q, 0, tokenward.Errorf(tokenward.EINVALID, "wait must be a duration from 0s to %s", MaxTailWait)
		}
		if q.Newest {
			return q, 0, tokenward.Errorf(tokenward.EINVALID, "wait tails forward: it does not go with order=newest")
		}
		wait = d
	}
	return q, wait, q.Validate()
}

// maxFilterPages bounds the store pages one search reads while filtering
// out entries the caller may not see.
const maxFilterPages = 20

func (s *Server) searchAudit(c *call) (int, any, error) {
	al, err := s.auditLog()
	if err != nil {
		return 0, nil, err
	}
	visible, err := s.Core.AuditFilter(c.tok)
	if err != nil {
		return 0, nil, err
	}
	q, wait, err := parseAuditQuery(c.r)
	if err != nil {
		return 0, nil, err
	}
	c.resource = q.Resource
	keep := visible
	if wait > 0 {
		// A tail's own polls are audited too; leaving them out of its
		// answers keeps `audit tail -f` from feeding on itself.
		c.meta = map[string]string{"tail": "1"}
		self := c.tok.ID
		keep = func(e *tokenward.AuditEntry) bool {
			if e.TokenID == self && e.Action == "audit.search" && e.Meta["tail"] == "1" {
				return false
			}
			return visible == nil || visible(e)
		}
	}
	ctx := c.r.Context()
	now := time.Now
	if al.Now != nil {
		now = al.Now
	}
	deadline := now().Add(wait)
	poll := al.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		resp, err := s.fetchAudit(ctx, al, q, keep)
		if err != nil || len(resp.Entries) > 0 || wait == 0 || !now().Before(deadline) {
			return http.StatusOK, resp, err
		}
		q.After = resp.Next
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return http.StatusOK, resp, nil
		case <-t.C:
		}
	}
}

// fetchAudit runs q, keeping the entries keep allows (all when nil). It
// reads further pages, forward or back as q orders, until the limit is
// filled: a grant narrower than audit:*/*/* must still get the newest
// entries it may see when the newest of the trail are about other things.
// Next is the highest seq looked at, whether kept or not: after= it to
// follow the trail from there.
func (s *Server) fetchAudit(ctx context.Context, al *AuditLog, q audit.Query, keep func(*tokenward.AuditEntry) bool) (*api.AuditEntriesResponse, error) {
	if err := al.flush(ctx); err != nil {
		return nil, err
	}
	resp := &api.AuditEntriesResponse{Entries: []*tokenward.AuditEntry{}, Next: q.After}
	limit := q.EffectiveLimit()
	for page := 0; page < maxFilterPages; page++ {
		got, err := al.Store.SearchAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range got {
			resp.Next = max(resp.Next, e.Seq)
			if keep == nil || keep(e) {
				resp.Entries = append(resp.Entries, e)
				if len(resp.Entries) == limit {
					return resp, nil
				}
			}
		}
		if len(got) < limit {
			return resp, nil
		}
		if q.Newest {
			q.Before = got[len(got)-1].Seq
		} else {
			q.After = resp.Next
		}
	}
	return resp, nil
}

// exportAudit streams the whole trail as JSON lines (audit.Export). It is
// a raw route (the body is not one JSON value), so it authenticates,
// authorizes and records its own audit entry before streaming.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) {
	var al *AuditLog
	ok := s.rawAudited(w, r, "audit.export", func(tok *tokenward.Token) error {
		if err := s.Core.RequireAudit(tok); err != nil {
			return err
		}
		var err error
		al, err = s.auditLog()
		return err
	})
	if !ok {
		return
	}
	if err := al.flush(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="tokenward-audit.jsonl"`)
	sent := &countingWriter{w: w}
	if err := audit.Export(r.Context(), sent, al.Store); err != nil {
		if r.Context().Err() != nil {
			s.Logger.Debug("audit export ended: the client went away", "err", err)
			return
		}
		s.Logger.Error("audit export failed", "err", err)
		if sent.n == 0 {
			w.Header().Del("Content-Disposition")
			writeError(w, tokenward.Errorf(tokenward.EINTERNAL, "the audit export failed"))
			return
		}
		// The export is under way: cut the response off (no final chunk),
		// so the client sees it did not end. Ending it cleanly made a
		// cut export look whole to `audit export`.
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// rawAudited authenticates a raw route's request, runs authorize, and
// records the audit entry (fail-closed), as wrap does for JSON routes. It
// writes the error response and returns false when the request must stop.
func (s *Server) rawAudited(w http.ResponseWriter, r *http.Request, action string, authorize func(*tokenward.Token) error) bool {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	ip := s.clientIP(r)
	tok, err := s.authenticate(r.Context(), w, bearer(r), ip)
	if err == nil {
		err = authorize(tok)
	}
	err = clientGone(r, err)
	if s.Audit != nil {
		e := &tokenward.AuditEntry{
			Time: start.UTC(), RequestID: reqID, Action: action,
			Outcome: outcome(err), Reason: reason(err), Status: statusOf(err, http.StatusOK),
			SourceIP: ip, UserAgent: trunc(r.UserAgent(), 256),
		}
		fillAuditToken(e, tok, err, nil)
		if aerr := s.Audit(auditContext(r), e); aerr != nil {
			writeError(w, s.auditRefused(reqID, aerr))
			return false
		}
	}
	if err != nil {
		writeError(w, err)
		return false
	}
	return true
}

// verifyResponse is the answer of GET /v1/audit/verify.
type verifyResponse struct {
	*audit.Report
	api.AuditVerdict
}

func (s *Server) verifyAudit(c *call) (int, any, error) {
	if err := s.Core.RequireAudit(c.tok); err != nil {
		return 0, nil, err
	}
	al, err := s.auditLog()
	if err != nil {
		return 0, nil, err
	}
	ctx := c.r.Context()
	if err := al.flush(ctx); err != nil {
		return 0, nil, err
	}
	cps, err := al.Store.AuditCheckpoints(ctx)
	if err != nil {
		return 0, nil, err
	}
	rep, err := audit.Verify(al.Store.AuditEntries(ctx), cps, al.PublicKey)
	if err != nil {
		return 0, nil, err
	}
	if rep.Problems == nil {
		rep.Problems = []audit.Problem{}
	}
	c.meta = map[string]string{"ok": strconv.FormatBool(rep.OK()), "last_seq": strconv.FormatInt(rep.LastSeq, 10)}
	return http.StatusOK, &verifyResponse{Report: rep, AuditVerdict: api.AuditVerdict{OK: rep.OK(), KeyID: audit.KeyID(al.PublicKey)}}, nil
}

func (s *Server) auditKey(c *call) (int, any, error) {
	if _, err := s.Core.AuditFilter(c.tok); err != nil {
		return 0, nil, err
	}
	al, err := s.auditLog()
	if err != nil {
		return 0, nil, err
	}
	if len(al.PublicKey) != ed25519.PublicKeySize {
		return 0, nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "this server signs no audit checkpoints")
	}
	pem, err := audit.MarshalPublicKey(al.PublicKey)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &api.AuditKeyResponse{KeyID: audit.KeyID(al.PublicKey), PublicKey: string(pem)}, nil
}

// fillAuditToken names the caller in e: the authenticated token, or the
// known token an authentication refused (revoked, expired): its use is a
// leak signal. Never the token itself.
//
// A request refused before its handler ran (401) still gets a resource,
// from the route's path values, so monitoring sees what a revoked token
// reached for.
func fillAuditToken(e *tokenward.AuditEntry, tok *tokenward.Token, err error, r *http.Request) {
	if e.Resource == "" && err != nil && r != nil {
		e.Resource = pathResource(r)
	}
	if tok != nil {
		e.TokenID, e.TokenName, e.CI = tok.ID, tok.Name, tok.CI
		return
	}
	if who, ok := core.PresentedToken(err); ok {
		e.TokenID, e.TokenName, e.CI = who.ID, who.Name, who.CI
	}
}

// pathResourceKinds names the resource a route's wildcard holds, by the
// route's pattern up to the wildcard, as the handlers name it (token:ID,
// lease:ID, ...): not every {id} is a token's.
var pathResourceKinds = []struct{ prefix, wildcard, kind string }{
	{"/v1/tokens/{id}", "id", "token:"},
	{"/v1/leases/{id}", "id", "lease:"},
	{"/v1/anomalies/{id}", "id", "anomaly:"},
	{"/v1/rotation/bulk/{id}", "id", "bulk:"},
	{"/v1/bindings/{name}", "name", "binding:"},
	{"/v1/gateway/routes/{route}", "route", "gateway:"},
	{"/v1/gateway/db/routes/{name}", "name", "gateway:"},
}

// pathResource is the resource a route's path names: project[/env[/name]]
// or kind:ID (pathResourceKinds), clipped (the text is the client's,
// unchecked).
func pathResource(r *http.Request) string {
	var res string
	_, pattern, _ := strings.Cut(r.Pattern, " ")
	for _, k := range pathResourceKinds {
		if strings.HasPrefix(pattern, k.prefix) {
			if v := r.PathValue(k.wildcard); v != "" {
				return trunc(k.kind+v, 256)
			}
		}
	}
	if p := r.PathValue("project"); p != "" {
		res = p
		if env := r.PathValue("env"); env != "" {
			res += "/" + env
			if name := r.PathValue("name"); name != "" {
				res += "/" + name
			}
		}
	}
	return trunc(res, 256)
}
