package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// pgExec runs statements on a PostgreSQL database.
func pgExec(t *testing.T, url string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	must(t, err)
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// The generated authorization matrix: every route the server has (from its
// own route table, e.api.Routes()), against principals of every kind and
// scope shape, each request real (loopback HTTP, SQLite, audit trail,
// monitoring, OIDC and rotation wired as the server command wires them).
//
// Who may call a route is stated in the test's table, from the API's
// documentation (docs/api.md, audit.md, monitoring.md, oidc.md,
// rotation.md) — not derived from the code under test. The verdict for a
// principal is computed from the table and the grants the test gave the
// principal, by the test's own matcher (authzCovers); tokenward.Grants is
// consulted only as a cross-check of that matcher. A route missing from the
// table fails the test, so nobody adds a route without saying who may call
// it. A route whose rule depends on what the request asks for (the grants
// a token or binding is to give, the kind and lifetime of a new token, the
// grants of the token managed) has more entries, "METHOD /pattern #what",
// one for each kind of thing asked.

// authzShapes are the scopes every service token comes in, one token per
// action and shape. STRIPE_KEY in payments/prod is the secret the routes
// act on.
var authzShapes = []struct{ name, scope string }{
	{"exact", "payments/prod/STRIPE_KEY"},
	{"glob", "payments/prod/STRIPE_*"},
	{"env", "payments/prod/*"},
	{"project", "payments/*/*"},
	{"all", "*/*/*"},
	{"otherenv", "payments/dev/*"},
	{"otherproject", "other/prod/*"},
}

// authzPrincipal is one caller of the matrix.
type authzPrincipal struct {
	name   string
	secret string // what goes in the Authorization header ("" for none)
	id     string // token id, when the token exists in the store
	kind   tokenward.TokenKind
	grants []string // as given to the token
	// refused says the token does not authenticate (no, malformed,
	// unknown, expired, revoked or suspended token): 401 on every route
	// that needs a token.
	refused bool
	creator string // principal name of the token that created it
	// expiresIn is how long the token has left when the matrix runs (0:
	// it does not expire).
	expiresIn time.Duration
}

// authzNeed says who may call a route. Exactly one of the fields is set
// (besides noJIT); admin implies every action on what it covers.
type authzNeed struct {
	public    bool             // no token needed; any Authorization header is ignored
	anyToken  bool             // any token that authenticates
	action    tokenward.Action // with on or anyIn
	on        string           // p/e/n: a grant of action covering it (a '*' segment must be covered as such)
	anyIn     string           // p/e: a grant of action reaching into p/e
	inProject string           // any grant reaching into the project
	anyOf     []tokenward.Action
	delegate  []string // the token covers every one of these grants (it may mint them)
	binding   []string // admin over every grant a binding gives, and not a JIT token
	manage    *authzPrincipal
	owner     string // that principal, or admin over */*/*; others get 404 (not 403): the thing's existence is not disclosed
	lessee    string // that principal (a lease's holder), or action (revoke) covering on; others get 404
	// routeUse: a gateway grant covering that route, or admin over
	// */*/* (docs/gateway.md); with on, also admin covering on.
	routeUse string
	noJIT    bool // and never a just-in-time token
	// adminKind: and an admin/personal (twa_) token (it mints one).
	adminKind bool
	// lifetime: and a token that lives at least that long (it mints a
	// token of that lifetime: a token never outlives its creator).
	lifetime time.Duration
}

// authzCase is one route's entry: who may call it, how to call it, and
// what a call could change.
type authzCase struct {
	need authzNeed
	ok   []int // statuses of an allowed call; the first is the usual one
	// req prepares the i-th call (as admin, when it needs a fresh target)
	// and returns its path and body.
	req func(t *testing.T, i int) (string, any)
	// state is what the route could change; a refused call leaves it as
	// it was.
	state  func(t *testing.T) string
	stream bool // the answer does not end: read the status only
	// vault: a Vault API route (docs/vault.md): a refused token is 403, as
	// Vault has no 401, and a refusal has Vault's error body.
	vault bool
	// self: the call acts on the caller's own token (revoke-self), so each
	// principal calls with a fresh token of its grants.
	self bool
}

func (n authzNeed) String() string {
	var also string
	if n.adminKind {
		also += ", a twa_ token"
	}
	if n.lifetime > 0 {
		also += ", living " + n.lifetime.String()
	}
	return n.grantString() + also
}

func (n authzNeed) grantString() string {
	switch {
	case n.public:
		return "public"
	case n.anyToken:
		return "any token" + map[bool]string{true: " but JIT"}[n.noJIT]
	case n.routeUse != "":
		return "gateway:" + n.routeUse + " or admin:" + n.on
	case n.on != "":
		return string(n.action) + ":" + n.on
	case n.anyIn != "":
		return string(n.action) + " in " + n.anyIn
	case n.inProject != "":
		return "any grant in " + n.inProject
	case n.anyOf != nil:
		return fmt.Sprint("any grant of ", n.anyOf)
	case n.delegate != nil:
		return fmt.Sprint("covers ", n.delegate)
	case n.binding != nil:
		return fmt.Sprint("admin over ", n.binding, ", not JIT")
	case n.manage != nil:
		return "creator of, or revoke over, " + n.manage.name
	case n.owner != "":
		return "owner " + n.owner + " or admin:*/*/*"
	case n.lessee != "":
		return "holder " + n.lessee + " or " + string(n.action) + ":" + n.on
	}
	return "?"
}

// authzGrant is a grant as the test reads it.
type authzGrant struct {
	action tokenward.Action
	seg    [3]string
}

func parseAuthzGrant(t *testing.T, s string) authzGrant {
	t.Helper()
	action, res, ok := strings.Cut(s, ":")
	if ok && tokenward.Action(action) == tokenward.ActionGateway {
		// A route, not a secret: no project or environment it reaches.
		return authzGrant{tokenward.ActionGateway, [3]string{"", "", res}}
	}
	segs := strings.Split(res, "/")
	if !ok || len(segs) != 3 {
		t.Fatalf("bad grant %q in the matrix", s)
	}
	return authzGrant{tokenward.Action(action), [3]string(segs)}
}

// authzCovers is the test's own reading of the documented grant rule: a
// grant covers a resource when its action is the one wanted or admin, and
// each segment's glob matches the resource's segment, a '*' in the
// resource being an ordinary character (so only '*' covers '*'). A gateway
// grant's resource is a route, not a secret: only a gateway grant whose
// glob matches the route, or admin over */*/*, covers it (docs/gateway.md).
func authzCovers(g authzGrant, action tokenward.Action, res [3]string) bool {
	if action == tokenward.ActionGateway {
		ok, _ := path.Match(g.seg[2], res[2])
		return g.action == tokenward.ActionGateway && ok || g.action == tokenward.ActionAdmin && g.seg == [3]string{"*", "*", "*"}
	}
	if g.action == tokenward.ActionGateway {
		return false
	}
	if g.action != action && g.action != tokenward.ActionAdmin {
		return false
	}
	for i := range res {
		if ok, err := path.Match(g.seg[i], res[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// authzOver is what one must hold to manage grant s (give it through a
// binding: admin; see or revoke a token holding it: revoke): action over
// the grant's own resource for a secret grant; admin over */*/* for a
// gateway grant, whose route no secret glob reaches (only admin over
// everything gives or manages one, docs/api.md, docs/oidc.md).
func authzOver(t *testing.T, action tokenward.Action, s string) (tokenward.Action, [3]string) {
	g := parseAuthzGrant(t, s)
	if g.action == tokenward.ActionGateway {
		return tokenward.ActionAdmin, [3]string{"*", "*", "*"}
	}
	return action, g.seg
}

func splitRes(t *testing.T, s string, n int) [3]string {
	t.Helper()
	segs := strings.Split(s, "/")
	if len(segs) != n {
		t.Fatalf("bad resource %q in the matrix", s)
	}
	var out [3]string
	copy(out[:], segs)
	return out
}

// allows is the verdict of the table for p, from p's grants alone.
func (n authzNeed) allows(t *testing.T, p *authzPrincipal) bool {
	if n.public {
		return true
	}
	if p.refused {
		return false
	}
	if n.noJIT && p.kind == tokenward.TokenJIT {
		return false
	}
	if n.adminKind && p.kind != tokenward.TokenAdmin || n.lifetime > 0 && p.expiresIn > 0 && p.expiresIn < n.lifetime {
		return false
	}
	var gs []authzGrant
	for _, s := range p.grants {
		gs = append(gs, parseAuthzGrant(t, s))
	}
	anyCovers := func(action tokenward.Action, res [3]string) bool {
		return slices.ContainsFunc(gs, func(g authzGrant) bool { return authzCovers(g, action, res) })
	}
	switch {
	case n.anyToken:
		return true
	case n.lessee != "":
		return p.name == n.lessee || anyCovers(n.action, splitRes(t, n.on, 3))
	case n.routeUse != "":
		return anyCovers(tokenward.ActionAdmin, [3]string{"*", "*", "*"}) || (n.on != "" && anyCovers(tokenward.ActionAdmin, splitRes(t, n.on, 3))) ||
			slices.ContainsFunc(gs, func(g authzGrant) bool {
				ok, _ := path.Match(g.seg[2], n.routeUse)
				return g.action == tokenward.ActionGateway && ok
			})
	case n.on != "":
		return anyCovers(n.action, splitRes(t, n.on, 3))
	case n.anyIn != "":
		pe := splitRes(t, n.anyIn, 2)
		return slices.ContainsFunc(gs, func(g authzGrant) bool {
			return authzCovers(g, n.action, [3]string{pe[0], pe[1], g.seg[2]})
		})
	case n.inProject != "":
		return slices.ContainsFunc(gs, func(g authzGrant) bool {
			ok, _ := path.Match(g.seg[0], n.inProject)
			return ok
		})
	case n.anyOf != nil:
		return slices.ContainsFunc(gs, func(g authzGrant) bool {
			return g.action == tokenward.ActionAdmin || slices.Contains(n.anyOf, g.action)
		})
	case n.delegate != nil:
		for _, s := range n.delegate {
			w := parseAuthzGrant(t, s)
			if !anyCovers(w.action, w.seg) {
				return false
			}
		}
		return true
	case n.binding != nil:
		if p.kind == tokenward.TokenJIT {
			return false
		}
		for _, s := range n.binding {
			if !anyCovers(authzOver(t, tokenward.ActionAdmin, s)) {
				return false
			}
		}
		return true
	case n.manage != nil:
		if p.name == n.manage.name || p.name == n.manage.creator {
			return true
		}
		for _, s := range n.manage.grants {
			if !anyCovers(authzOver(t, tokenward.ActionRevoke, s)) {
				return false
			}
		}
		return true
	case n.owner != "":
		return p.name == n.owner || anyCovers(tokenward.ActionAdmin, [3]string{"*", "*", "*"})
	}
	t.Fatalf("need %+v says nothing", n)
	return false
}

// crossCheck compares the test's verdict on the grant part of n with
// tokenward.Grants' own, where the root package has the function. It
// checks the matcher above, not the server.
func (n authzNeed) crossCheck(t *testing.T, p *authzPrincipal, verdict bool) {
	if n.public || n.anyToken || p.refused || (n.noJIT && p.kind == tokenward.TokenJIT) ||
		n.adminKind && p.kind != tokenward.TokenAdmin || n.lifetime > 0 && p.expiresIn > 0 && p.expiresIn < n.lifetime {
		return
	}
	// allowsOver is Allows of action over what managing g needs: g's own
	// resource, or for a gateway grant admin over */*/* (no secret glob
	// reaches a route).
	allowsOver := func(gs tokenward.Grants, action tokenward.Action, g tokenward.Grant) bool {
		if g.Action == tokenward.ActionGateway {
			return gs.Allows(tokenward.ActionAdmin, "*", "*", "*")
		}
		return gs.Allows(action, g.Project, g.Env, g.Name)
	}
	gs, err := tokenward.ParseGrants(p.grants)
	if err != nil {
		t.Fatal(err)
	}
	var product bool
	switch {
	case n.lessee != "":
		r := splitRes(t, n.on, 3)
		product = p.name == n.lessee || gs.Allows(n.action, r[0], r[1], r[2])
	case n.routeUse != "":
		product = gs.AllowsRoute(n.routeUse)
		if n.on != "" {
			r := splitRes(t, n.on, 3)
			product = product || gs.Allows(tokenward.ActionAdmin, r[0], r[1], r[2])
		}
	case n.on != "":
		r := splitRes(t, n.on, 3)
		product = gs.Allows(n.action, r[0], r[1], r[2])
	case n.anyIn != "":
		r := splitRes(t, n.anyIn, 2)
		product = gs.AllowsAnyIn(n.action, r[0], r[1])
	case n.delegate != nil:
		want, err := tokenward.ParseGrants(n.delegate)
		if err != nil {
			t.Fatal(err)
		}
		product = gs.Covers(want)
	case n.binding != nil:
		product = p.kind != tokenward.TokenJIT
		for _, s := range n.binding {
			product = product && allowsOver(gs, tokenward.ActionAdmin, tokenward.MustParseGrant(s))
		}
	case n.manage != nil:
		product = p.name == n.manage.name || p.name == n.manage.creator || len(n.manage.grants) > 0
		for _, s := range n.manage.grants {
			product = product && (p.name == n.manage.creator || allowsOver(gs, tokenward.ActionRevoke, tokenward.MustParseGrant(s)))
		}
	case n.owner != "":
		product = p.name == n.owner || gs.Allows(tokenward.ActionAdmin, "*", "*", "*")
	default:
		return
	}
	if product != verdict {
		t.Errorf("%s for %s %v: the table's matcher says %v, tokenward.Grants says %v", n, p.name, p.grants, verdict, product)
	}
}

// authzEnv is one server with every feature a route needs: the audit
// trail in SQLite (read back at the end), monitoring, OIDC and rotation.
type authzEnv struct {
	*monEnv
	db     *sqlite.DB
	broker *audit.Broker
	issuer *oidctest.Issuer
	oe     *oidcEnv
	jti    int
}

func mustServeAuthz(t *testing.T) *authzEnv {
	t.Helper()
	m := mustServeMonitor(t)
	b := mustAuditSync(t, m.env, "journal")
	db := m.core.Store.(*sqlite.DB)
	m.api.AuditLog = &httpapi.AuditLog{Store: db, PublicKey: b.Signer.PublicKey(), Flush: b.Flush, PollInterval: 5 * time.Millisecond}
	// As the server command wires it: the trail records, then the monitor
	// observes. Entries carry the test clock, as monEnv's hook does.
	hook := func(ctx context.Context, a *tokenward.AuditEntry) error {
		a.Time = m.clock.Now()
		if err := b.Record(ctx, a); err != nil {
			return err
		}
		m.mu.Lock()
		m.audit = append(m.audit, a)
		m.mu.Unlock()
		m.core.ObserveAudit(ctx, a)
		return nil
	}
	m.api.Audit, m.mg.Record = hook, hook
	issuer := oidctest.NewIssuer(t)
	m.core.OIDC = &core.OIDC{Store: m.core.Store.(core.BindingStore), Verifier: oidc.NewVerifier(), MaxTTL: time.Hour}
	m.core.DBGateway = &core.DBGateway{Store: db}
	enableRotation(t, m.env, nil)
	return &authzEnv{monEnv: m, db: db, broker: b, issuer: issuer, oe: &oidcEnv{env: m.env, issuer: issuer}}
}

// jwt signs a fresh identity token (its own jti: the clock stands still).
func (e *authzEnv) jwt(t *testing.T) string {
	e.jti++
	claims := oidctest.GitHubClaims(e.issuer.URL, "tokenward", e.clock.Now())
	claims["jti"] = fmt.Sprintf("authz-matrix-%d", e.jti)
	return e.issuer.Sign(t, claims)
}

// refusalCode is the error code of each refusal status.
var refusalCode = map[int]string{401: tokenward.EUNAUTHORIZED, 403: tokenward.EFORBIDDEN, 404: tokenward.ENOTFOUND}

// authzResult is one request of the matrix, for the audit check.
type authzResult struct {
	route, who, reqID string
	status            int
	public            bool
	p                 *authzPrincipal
}

// send sends one request and returns its status, request id and body
// (none for an event stream that opened: it does not end).
func (e *authzEnv) send(t *testing.T, token, method, path string, body any, stream bool) (int, string, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := e.request(t, ctx, token, method, path, body)
	defer resp.Body.Close()
	var b []byte
	if !stream || resp.StatusCode != http.StatusOK {
		b, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), b
}

// TestAuthorizationMatrixGenerated: every route × every principal; a
// request is allowed exactly when the table says the principal's grants
// cover it, a refused one changed nothing, and every request to a route
// that needs a token is in the audit trail, with the right token id and
// status, and without any token in it.
func TestAuthorizationMatrixGenerated(t *testing.T) {
	e := mustServeAuthz(t)
	ctx := context.Background()
	admin := e.admin

	// The world the routes act on.
	e.mustDo(t, admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod", "dev", "scratch"}}, 201)
	e.mustDo(t, admin, "POST", "/v1/projects", map[string]any{"name": "other", "environments": []string{"prod"}}, 201)
	// matrix_key: a secret named like the gateway route "matrix", which
	// admin:*/*/mat* administers (and lists).
	for _, p := range []string{"payments/prod/STRIPE_KEY", "payments/prod/DB_URL", "payments/prod/matrix_key", "payments/dev/STRIPE_KEY", "payments/scratch/SCRATCH_KEY", "other/prod/STRIPE_KEY"} {
		e.mustDo(t, admin, "PUT", "/v1/secrets/"+p, map[string]any{"value": "matrix-value-" + strings.ReplaceAll(p, "/", "-")}, 200)
	}
	const sp = "payments/prod/STRIPE_KEY"
	basePolicy := map[string]any{"every": "30d", "grace": "1h", "rotator": "random", "config": map[string]string{"length": "24"}}
	e.mustDo(t, admin, "PUT", "/v1/rotation/policies/"+sp, basePolicy, 200)
	e.mustDo(t, admin, "POST", "/v1/bindings", e.oe.bindingBody("deploy-prod", "read:payments/prod/*"), 201)
	e.mustDo(t, admin, "POST", "/v1/bindings", e.oe.bindingBody("jit-narrow", "read:payments/prod/STRIPE_*"), 201)
	dbRoute := func(name string) map[string]any {
		return map[string]any{"name": name, "upstream": "db.internal:5432", "secret": "payments/prod/DB_URL"}
	}
	e.mustDo(t, admin, "POST", "/v1/gateway/db/routes", dbRoute("pgprod"), 201)

	// The principals.
	var adminSelf tokenward.Token
	must(t, json.Unmarshal(e.mustDo(t, admin, "GET", "/v1/tokens/self", nil, 200), &adminSelf))
	ps := []*authzPrincipal{{name: "admin", secret: admin, id: adminSelf.ID, kind: tokenward.TokenAdmin, grants: []string{"admin:*/*/*"}}}
	if adminSelf.Kind != tokenward.TokenAdmin || !strings.HasPrefix(admin, tokenward.PrefixAdmin) || strings.Join(adminSelf.Grants.Strings(), ",") != "admin:*/*/*" {
		t.Fatalf("the init token is %s with %v; want a twa_ admin token with admin:*/*/*", adminSelf.Kind, adminSelf.Grants)
	}
	mint := func(name, ttl string, grants ...string) *authzPrincipal {
		id, secret := e.mustToken(t, admin, name, ttl, grants...)
		p := &authzPrincipal{name: name, secret: secret, id: id, kind: tokenward.TokenService, grants: grants, creator: "admin"}
		ps = append(ps, p)
		return p
	}
	for _, a := range tokenward.Actions {
		for _, s := range authzShapes {
			mint(string(a)+"-"+s.name, "", string(a)+":"+s.scope)
		}
	}
	mint("nothing", "", "read:nowhere/none/NOTHING")
	lessee := mint("lessee", "", "read:payments/prod/D*") // D*: DB, and DB_URL (a stored secret, so it may list payments/prod)
	mint("gateway-route", "", "gateway:matrix")
	mint("gateway-glob", "", "gateway:mat*")
	mint("gateway-all", "", "gateway:*")
	mint("gateway-other", "", "gateway:other")
	// Admin over every secret whose name matches the gateway route's
	// ("matrix"): no route of that name, nor a token or binding giving one.
	mint("admin-routeglob", "", "admin:*/*/mat*")
	// An admin/personal (twa_) token with a narrow grant: its kind lets it
	// mint twa_ tokens, within its grants.
	personal := &authzPrincipal{name: "personal", kind: tokenward.TokenAdmin, grants: []string{"read:payments/prod/*"}, creator: "admin"}
	{
		var cr api.CreateTokenResponse
		must(t, json.Unmarshal(e.mustDo(t, admin, "POST", "/v1/tokens", map[string]any{"name": personal.name, "kind": "admin", "grants": personal.grants}, 201), &cr))
		personal.id, personal.secret = cr.Token.ID, cr.Secret
		if cr.Token.Kind != tokenward.TokenAdmin || !strings.HasPrefix(personal.secret, tokenward.PrefixAdmin) {
			t.Fatalf("got a %s token; want a twa_ admin token", cr.Token.Kind)
		}
		ps = append(ps, personal)
	}
	expired := mint("expired", "1h", "admin:*/*/*")
	expired.refused = true
	revoked := mint("revoked", "", "admin:*/*/*")
	revoked.refused = true
	e.mustDo(t, admin, "POST", "/v1/tokens/"+revoked.id+"/revoke", nil, 200)
	// Suspended by the monitor: a leak report revokes the token on the
	// server's own authority (rule leak_reported, policy suspend).
	suspended := mint("suspended", "", "admin:*/*/*")
	suspended.refused = true
	e.mustDo(t, suspended.secret, "GET", "/v1/tokens/self", nil, 200)
	e.mustDo(t, "", "POST", "/v1/tokens/report-leak", map[string]any{"token": suspended.secret}, 202)
	if got := e.entries("token.suspend"); len(got) != 1 || got[0].Resource != "token:"+suspended.id {
		t.Fatalf("got suspensions %+v; want one of %s", got, suspended.id)
	}
	// What a suspended token gets: the 401 of a revoked one (suspension is
	// a revocation on the server's own authority).
	if got, b := e.do(t, suspended.secret, "GET", "/v1/tokens/self", nil); got != 401 || !strings.Contains(string(b), "token "+suspended.id+" is revoked") {
		t.Fatalf("suspended token: got %d %s; want 401 naming it revoked", got, b)
	}
	// A revoked token presented: an anomaly to acknowledge.
	e.mustDo(t, revoked.secret, "GET", "/v1/tokens/self", nil, 401)
	var anomalyID string
	for _, a := range e.anomalies(t, true) {
		if a.TokenID == revoked.id {
			anomalyID = a.ID
		}
	}
	if anomalyID == "" {
		t.Fatal("no anomaly for the revoked token's use")
	}
	e.clock.Add(2 * time.Hour) // "expired" expires
	// A just-in-time token with a narrow scope, minted now (15 minutes).
	var lr api.CreateTokenResponse
	must(t, json.Unmarshal(e.mustDo(t, "", "POST", "/v1/auth/oidc/login", map[string]any{"binding": "jit-narrow", "jwt": e.jwt(t)}, 200), &lr))
	jit := &authzPrincipal{name: "jit", secret: lr.Secret, id: lr.Token.ID, kind: tokenward.TokenJIT, grants: []string{"read:payments/prod/STRIPE_*"}, creator: "binding:jit-narrow",
		expiresIn: lr.Token.ExpiresAt.Sub(e.clock.Now())}
	if lr.Token.Kind != tokenward.TokenJIT || !strings.HasPrefix(jit.secret, tokenward.PrefixJIT) || strings.Join(lr.Token.Grants.Strings(), ",") != jit.grants[0] {
		t.Fatalf("got a %s token with %v; want a twj_ token with %s", lr.Token.Kind, lr.Token.Grants, jit.grants[0])
	}
	ps = append(ps, jit)
	unknown, _ := tokenward.NewTokenSecret(tokenward.TokenService)
	good := ps[1].secret
	badsum := good[:len(good)-1] + map[bool]string{true: "B", false: "A"}[good[len(good)-1] == 'A']
	if _, err := tokenward.ParseToken(badsum); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("the bad-checksum token parses: %v", err)
	}
	ps = append(ps,
		&authzPrincipal{name: "none", refused: true},
		&authzPrincipal{name: "malformed", secret: "not-a-token", refused: true},
		&authzPrincipal{name: "badsum", secret: badsum, refused: true},
		&authzPrincipal{name: "unknown", secret: unknown, refused: true},
	)
	byName := map[string]*authzPrincipal{}
	for _, p := range ps {
		byName[p.name] = p
	}

	// Targets that outlive one call.
	victim := &authzPrincipal{name: "victim", creator: "admin", grants: []string{"read:" + sp}}
	victim.id, _ = e.mustToken(t, admin, "victim", "", victim.grants...)
	// A token that calls the gateway route: only its creator, or admin
	// over everything, manages it (no revoke grant reaches a route).
	gwVictim := &authzPrincipal{name: "gw-victim", creator: "admin", grants: []string{"gateway:matrix"}}
	gwVictim.id, _ = e.mustToken(t, admin, "gw-victim", "", gwVictim.grants...)
	e.mustDo(t, admin, "POST", "/v1/bindings", e.oe.bindingBody("gw-matrix", "gateway:matrix"), 201)
	var job api.BulkJob[json.RawMessage]
	must(t, json.Unmarshal(e.mustDo(t, byName["rotate-env"].secret, "POST", "/v1/rotation/bulk", map[string]any{"scope": "nowhere/*/*"}, 202), &job))

	// Dynamic sources (docs/dynamic.md), on a real PostgreSQL to make roles
	// in: DB in payments/prod, its admin URL a secret in payments/dev; a
	// lease of the lessee's that outlives the calls.
	const dsp = "payments/prod/DB"
	pg := pgtest.Start(t)
	adminURL := pg.NewDatabase(t)
	pgExec(t, adminURL, "CREATE ROLE matrix_app NOLOGIN")
	e.mustDo(t, admin, "PUT", "/v1/secrets/payments/dev/PG_ADMIN_URL", map[string]any{"value": adminURL}, 200)
	enableDynamic(t, e.env)
	sourceBody := func(ttl string) map[string]any {
		return map[string]any{"kind": "postgres", "ttl": ttl, "max_ttl": "2h", "config": map[string]string{"admin_secret": "payments/dev/PG_ADMIN_URL", "group": "matrix_app"}}
	}
	e.mustDo(t, admin, "PUT", "/v1/dynamic/"+dsp, sourceBody("15m"), 200)
	newLease := func(t *testing.T) string {
		var lr api.LeaseResponse
		must(t, json.Unmarshal(e.mustDo(t, lessee.secret, "POST", "/v1/dynamic/"+dsp+"/lease", nil, 201), &lr))
		return lr.Lease.ID
	}
	standingLease, victimLease := newLease(t), ""
	sourceTTL := func(t *testing.T) string {
		src, err := e.db.DynamicSource(ctx, "payments", "prod", "DB")
		must(t, err)
		return src.TTL.String()
	}
	leaseCount := func(t *testing.T) string {
		ls, err := e.db.Leases(ctx, tokenward.LeaseFilter{})
		must(t, err)
		return fmt.Sprint(len(ls), " leases")
	}

	// State readers, straight from the stores.
	secretVersion := func(t *testing.T) string {
		s, err := e.core.Store.Secret(ctx, "payments", "prod", "STRIPE_KEY")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint("version ", s.Version)
	}
	rotations := e.core.Rotation.Machine.Store
	inflight := func(t *testing.T) int {
		fl, err := rotations.InFlight(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range fl {
			if r.Path == sp {
				n++
			}
		}
		return n
	}
	policy := func(t *testing.T) string {
		p, err := rotations.Policy(ctx, sp)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("every %s disabled %v", p.Every, p.Disabled)
	}
	archived := func(t *testing.T) string {
		as, err := e.mg.Store.Archives(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.Project+"/"+a.Env)
		}
		return fmt.Sprint(out)
	}
	bindings := e.core.OIDC.Store
	bindingState := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string {
			b, err := bindings.Binding(ctx, name)
			if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
				return "absent"
			}
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint("enabled ", b.Enabled)
		}
	}
	tokenState := func(id func() string) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, err := e.core.Store.Token(ctx, id())
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint("revoked ", !tok.RevokedAt.IsZero())
		}
	}
	exists := func(get func() error) func(t *testing.T) string {
		return func(t *testing.T) string {
			err := get()
			if err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
				t.Fatal(err)
			}
			return fmt.Sprint("exists ", err == nil)
		}
	}

	// Per-call targets: fresh names, victims to revoke or delete.
	var fresh, victimID, cascadeChildID, gwVictimID, victimBinding, victimRoute string
	fixed := func(p string, body any) func(*testing.T, int) (string, any) {
		return func(*testing.T, int) (string, any) { return p, body }
	}
	secretAt := "/v1/secrets/" + sp
	// The Vault API's KV v2 (mount = project, path = env/name): reads and
	// writes on STRIPE_KEY; deletions on VAULT_KEY, whose version 1 is
	// never current (it may be destroyed).
	const vaultKey = "payments/prod/VAULT_KEY"
	e.mustDo(t, admin, "PUT", "/v1/secrets/"+vaultKey, map[string]any{"value": "matrix-vault-1"}, 200)
	e.mustDo(t, admin, "PUT", "/v1/secrets/"+vaultKey, map[string]any{"value": "matrix-vault-2"}, 200)
	versionStates := func(t *testing.T) string {
		st, err := e.core.Store.(tokenward.VersionDeleteStore).VersionStates(ctx, "payments", "prod", "VAULT_KEY")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(st)
	}
	kvWrite := map[string]any{"data": map[string]any{"value": "matrix-vault-write"}}
	// Gateway routes (docs/gateway.md): "matrix" injects STRIPE_KEY.
	gwRoute := func(name string) map[string]any {
		return map[string]any{"name": name, "upstream": "https://api.example.com", "secret": sp, "inject": "header:Authorization=Bearer {{value}}", "allow": []string{"GET /**"}}
	}
	e.mustDo(t, admin, "POST", "/v1/gateway/routes", gwRoute("matrix"), 201)
	var victimGWRoute string
	routeExists := func(name *string) func(t *testing.T) string {
		return exists(func() error { _, err := e.db.GatewayRoute(ctx, *name); return err })
	}
	table := map[string]authzCase{
		"GET /v1/health":       {need: authzNeed{public: true}, req: fixed("/v1/health", nil)},
		"GET /healthz":         {need: authzNeed{public: true}, req: fixed("/healthz", nil)},
		"GET /v1/ready":        {need: authzNeed{public: true}, req: fixed("/v1/ready", nil)},
		"GET /readyz":          {need: authzNeed{public: true}, req: fixed("/readyz", nil)},
		"GET /v1/openapi.yaml": {need: authzNeed{public: true}, req: fixed("/v1/openapi.yaml", nil)},
		"GET /v1/projects":     {need: authzNeed{anyToken: true}, req: fixed("/v1/projects", nil)},
		"POST /v1/projects": {need: authzNeed{action: "admin", on: "fresh/*/*"}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("fresh", i)
				return "/v1/projects", map[string]any{"name": fresh}
			},
			state: exists(func() error { _, err := e.core.Store.Project(ctx, fresh); return err })},
		"GET /v1/projects/{project}": {need: authzNeed{inProject: "payments"}, req: fixed("/v1/projects/payments", nil)},
		"POST /v1/projects/{project}/envs": {need: authzNeed{action: "admin", on: "payments/fresh/*"}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("fresh", i)
				return "/v1/projects/payments/envs", map[string]any{"name": fresh}
			},
			state: func(t *testing.T) string {
				p, err := e.core.Store.Project(ctx, "payments")
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(p.Envs)
			}},
		"GET /v1/secrets/{project}/{env}":        {need: authzNeed{action: "read", anyIn: "payments/prod"}, req: fixed("/v1/secrets/payments/prod", nil)},
		"GET /v1/values/{project}/{env}":         {need: authzNeed{action: "read", anyIn: "payments/prod"}, req: fixed("/v1/values/payments/prod", nil)},
		"GET /v1/secrets/{project}/{env}/{name}": {need: authzNeed{action: "read", on: sp}, req: fixed(secretAt, nil)},
		"PUT /v1/secrets/{project}/{env}/{name}": {need: authzNeed{action: "write", on: sp}, state: secretVersion,
			req: func(_ *testing.T, i int) (string, any) {
				return secretAt, map[string]any{"value": fmt.Sprint("matrix-written-", i)}
			}},
		"GET /v1/secrets/{project}/{env}/{name}/versions":  {need: authzNeed{action: "read", on: sp}, req: fixed(secretAt+"/versions", nil)},
		"POST /v1/secrets/{project}/{env}/{name}/rollback": {need: authzNeed{action: "write", on: sp}, state: secretVersion, req: fixed(secretAt+"/rollback", map[string]any{"to": 1})},
		"GET /v1/tokens": {need: authzNeed{anyToken: true}, req: fixed("/v1/tokens", nil)},
		"POST /v1/tokens": {need: authzNeed{delegate: []string{"read:" + sp}}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("minted-", i)
				return "/v1/tokens", map[string]any{"name": fresh, "grants": []string{"read:" + sp}, "ttl": "10m"}
			},
			state: exists(func() error { _, err := e.core.Store.TokenByName(ctx, fresh); return err })},
		"GET /v1/tokens/self": {need: authzNeed{anyToken: true}, req: fixed("/v1/tokens/self", nil)},
		"GET /v1/tokens/{id}": {need: authzNeed{manage: victim}, req: fixed("/v1/tokens/"+victim.id, nil)},
		"POST /v1/tokens/{id}/revoke": {need: authzNeed{manage: victim},
			req: func(t *testing.T, i int) (string, any) {
				victimID, _ = e.mustToken(t, admin, fmt.Sprint("victim-", i), "", victim.grants...)
				return "/v1/tokens/" + victimID + "/revoke", nil
			},
			state: tokenState(func() string { return victimID })},
		// With cascade: the token named and the token it made; the caller
		// needs to manage only the one named (docs/security.md).
		"POST /v1/tokens/{id}/revoke #cascade": {need: authzNeed{manage: victim},
			req: func(t *testing.T, i int) (string, any) {
				var victimSecret string
				victimID, victimSecret = e.mustToken(t, admin, fmt.Sprint("cascade-victim-", i), "", victim.grants...)
				cascadeChildID, _ = e.mustToken(t, victimSecret, fmt.Sprint("cascade-child-", i), "", victim.grants...)
				return "/v1/tokens/" + victimID + "/revoke", map[string]any{"cascade": true}
			},
			state: func(t *testing.T) string {
				return tokenState(func() string { return victimID })(t) + ", child " + tokenState(func() string { return cascadeChildID })(t)
			}},
		// What a new token may be given: a gateway grant (a covering
		// gateway grant, or admin:*/*/*), the admin kind (only a twa_
		// token), a lifetime (no longer than the caller's own).
		"POST /v1/tokens #gateway": {need: authzNeed{delegate: []string{"gateway:matrix"}}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("minted-", i)
				return "/v1/tokens", map[string]any{"name": fresh, "grants": []string{"gateway:matrix"}, "ttl": "10m"}
			},
			state: exists(func() error { _, err := e.core.Store.TokenByName(ctx, fresh); return err })},
		"POST /v1/tokens #admin-kind": {need: authzNeed{delegate: []string{"read:" + sp}, adminKind: true}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("minted-", i)
				return "/v1/tokens", map[string]any{"name": fresh, "kind": "admin", "grants": []string{"read:" + sp}, "ttl": "10m"}
			},
			state: exists(func() error { _, err := e.core.Store.TokenByName(ctx, fresh); return err })},
		"POST /v1/tokens #lifetime": {need: authzNeed{delegate: []string{"read:" + sp}, lifetime: time.Hour}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("minted-", i)
				return "/v1/tokens", map[string]any{"name": fresh, "grants": []string{"read:" + sp}, "ttl": "1h"}
			},
			state: exists(func() error { _, err := e.core.Store.TokenByName(ctx, fresh); return err })},
		"GET /v1/tokens/{id} #gateway": {need: authzNeed{manage: gwVictim}, req: fixed("/v1/tokens/"+gwVictim.id, nil)},
		"POST /v1/tokens/{id}/revoke #gateway": {need: authzNeed{manage: gwVictim},
			req: func(t *testing.T, i int) (string, any) {
				gwVictimID, _ = e.mustToken(t, admin, fmt.Sprint("gw-victim-", i), "", gwVictim.grants...)
				return "/v1/tokens/" + gwVictimID + "/revoke", nil
			},
			state: tokenState(func() string { return gwVictimID })},
		"POST /v1/keys/rotate": {need: authzNeed{action: "admin", on: "*/*/*"}, req: fixed("/v1/keys/rotate", nil),
			state: func(t *testing.T) string {
				k, err := e.core.Store.Keyring(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(k)
				return hex.EncodeToString(sum[:])
			}},

		// OIDC (docs/oidc.md): bindings need admin over every grant they
		// give, never from a JIT token.
		"POST /v1/auth/oidc/login": {need: authzNeed{public: true},
			req: func(t *testing.T, _ int) (string, any) {
				return "/v1/auth/oidc/login", map[string]any{"binding": "jit-narrow", "jwt": e.jwt(t)}
			}},
		"GET /v1/bindings": {need: authzNeed{anyToken: true, noJIT: true}, req: fixed("/v1/bindings", nil)},
		"POST /v1/bindings": {need: authzNeed{binding: []string{"read:payments/prod/*"}}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("fresh-", i)
				return "/v1/bindings", e.oe.bindingBody(fresh, "read:payments/prod/*")
			},
			state: func(t *testing.T) string { return bindingState(fresh)(t) }},
		// A binding giving a gateway grant: admin:*/*/* alone, never an
		// admin grant whose name glob matches the route (admin:*/*/mat*).
		"POST /v1/bindings #gateway": {need: authzNeed{binding: []string{"gateway:matrix"}}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("fresh-", i)
				return "/v1/bindings", e.oe.bindingBody(fresh, "gateway:matrix")
			},
			state: func(t *testing.T) string { return bindingState(fresh)(t) }},
		"GET /v1/bindings/{name}":          {need: authzNeed{binding: []string{"read:payments/prod/*"}}, req: fixed("/v1/bindings/deploy-prod", nil)},
		"GET /v1/bindings/{name} #gateway": {need: authzNeed{binding: []string{"gateway:matrix"}}, req: fixed("/v1/bindings/gw-matrix", nil)},
		"DELETE /v1/bindings/{name}": {need: authzNeed{binding: []string{"read:payments/prod/*"}},
			req: func(t *testing.T, i int) (string, any) {
				victimBinding = fmt.Sprint("victim-", i)
				e.mustDo(t, admin, "POST", "/v1/bindings", e.oe.bindingBody(victimBinding, "read:payments/prod/*"), 201)
				return "/v1/bindings/" + victimBinding, nil
			},
			state: func(t *testing.T) string { return bindingState(victimBinding)(t) }},
		"POST /v1/bindings/{name}/enable": {need: authzNeed{binding: []string{"read:payments/prod/*"}},
			req: func(t *testing.T, _ int) (string, any) {
				must(t, bindings.SetBindingEnabled(ctx, "deploy-prod", false, e.clock.Now()))
				return "/v1/bindings/deploy-prod/enable", nil
			},
			state: bindingState("deploy-prod")},
		"POST /v1/bindings/{name}/disable": {need: authzNeed{binding: []string{"read:payments/prod/*"}},
			req: func(t *testing.T, _ int) (string, any) {
				must(t, bindings.SetBindingEnabled(ctx, "deploy-prod", true, e.clock.Now()))
				return "/v1/bindings/deploy-prod/disable", nil
			},
			state: bindingState("deploy-prod")},

		// The database gateway (docs/gateway-db.md): a route is managed by
		// who administers its secret, never by a JIT token.
		"GET /v1/gateway/db/routes": {need: authzNeed{anyToken: true, noJIT: true}, req: fixed("/v1/gateway/db/routes", nil)},
		"POST /v1/gateway/db/routes": {need: authzNeed{binding: []string{"read:payments/prod/DB_URL"}}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("fresh-", i)
				return "/v1/gateway/db/routes", dbRoute(fresh)
			},
			state: func(t *testing.T) string {
				return exists(func() error { _, err := e.db.DBRoute(ctx, fresh); return err })(t)
			}},
		"GET /v1/gateway/db/routes/{name}": {need: authzNeed{binding: []string{"read:payments/prod/DB_URL"}}, req: fixed("/v1/gateway/db/routes/pgprod", nil)},
		"DELETE /v1/gateway/db/routes/{name}": {need: authzNeed{binding: []string{"read:payments/prod/DB_URL"}},
			req: func(t *testing.T, i int) (string, any) {
				victimRoute = fmt.Sprint("victim-", i)
				e.mustDo(t, admin, "POST", "/v1/gateway/db/routes", dbRoute(victimRoute), 201)
				return "/v1/gateway/db/routes/" + victimRoute, nil
			},
			state: func(t *testing.T) string {
				return exists(func() error { _, err := e.db.DBRoute(ctx, victimRoute); return err })(t)
			}},

		// Pipelines.
		"GET /v1/projects/{project}/duplicates": {need: authzNeed{inProject: "payments"}, req: fixed("/v1/projects/payments/duplicates", nil)},

		// Monitoring (docs/monitoring.md).
		"GET /v1/anomalies": {need: authzNeed{action: "audit", on: "*/*/*"}, req: fixed("/v1/anomalies", nil)},
		"POST /v1/anomalies/{id}/ack": {need: authzNeed{action: "audit", on: "*/*/*"}, req: fixed("/v1/anomalies/"+anomalyID+"/ack", nil),
			state: func(t *testing.T) string {
				a, err := e.mg.Store.Anomaly(ctx, anomalyID)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint("acked ", !a.AckedAt.IsZero())
			}},
		"GET /v1/report": {need: authzNeed{action: "audit", on: "*/*/*"}, req: fixed("/v1/report", nil)},
		// Public and rate-limited per source address: every call here comes
		// from 127.0.0.1, so after ten a minute the answer is 429.
		"POST /v1/tokens/report-leak":           {need: authzNeed{public: true}, ok: []int{202, 429}, req: fixed("/v1/tokens/report-leak", map[string]any{"token": unknown})},
		"GET /v1/usage/tokens":                  {need: authzNeed{anyToken: true}, req: fixed("/v1/usage/tokens", nil)},
		"GET /v1/usage/secrets/{project}/{env}": {need: authzNeed{action: "read", anyIn: "payments/prod"}, req: fixed("/v1/usage/secrets/payments/prod", nil)},
		"POST /v1/projects/{project}/retire": {need: authzNeed{action: "admin", on: "payments/*/*"}, state: archived,
			req: fixed("/v1/projects/payments/retire", map[string]any{"dry_run": true})},
		"POST /v1/projects/{project}/envs/{env}/retire": {need: authzNeed{action: "admin", on: "payments/prod/*"}, state: archived,
			req: fixed("/v1/projects/payments/envs/prod/retire", map[string]any{"dry_run": true})},
		"POST /v1/projects/{project}/envs/{env}/restore": {need: authzNeed{action: "admin", on: "payments/scratch/*"}, state: archived,
			req: func(t *testing.T, _ int) (string, any) {
				if archived(t) == "[]" {
					e.mustDo(t, admin, "POST", "/v1/projects/payments/envs/scratch/retire", map[string]any{}, 200)
				}
				return "/v1/projects/payments/envs/scratch/restore", nil
			}},
		"GET /v1/archives":      {need: authzNeed{anyToken: true}, req: fixed("/v1/archives", nil)},
		"GET /v1/events/stream": {need: authzNeed{anyOf: []tokenward.Action{"read", "audit"}}, stream: true, req: fixed("/v1/events/stream", nil)},

		// Audit (docs/audit.md).
		"GET /v1/audit/entries": {need: authzNeed{anyOf: []tokenward.Action{"audit"}}, req: fixed("/v1/audit/entries?limit=1", nil)},
		"GET /v1/audit/export":  {need: authzNeed{action: "audit", on: "*/*/*"}, req: fixed("/v1/audit/export", nil)},
		"GET /v1/audit/verify":  {need: authzNeed{action: "audit", on: "*/*/*"}, req: fixed("/v1/audit/verify", nil)},
		"GET /v1/audit/key":     {need: authzNeed{anyOf: []tokenward.Action{"audit"}}, req: fixed("/v1/audit/key", nil)},

		// Rotation (docs/rotation.md): rotate on the secret; lists filter.
		"GET /v1/rotation/policies": {need: authzNeed{anyToken: true}, req: fixed("/v1/rotation/policies", nil)},
		"PUT /v1/rotation/policies/{project}/{env}/{name}": {need: authzNeed{action: "rotate", on: sp}, state: policy,
			req: func(t *testing.T, _ int) (string, any) {
				e.mustDo(t, admin, "PUT", "/v1/rotation/policies/"+sp, basePolicy, 200)
				return "/v1/rotation/policies/" + sp, map[string]any{"every": "7d", "grace": "1h", "rotator": "random", "config": map[string]string{"length": "24"}}
			}},
		"GET /v1/rotation/policies/{project}/{env}/{name}": {need: authzNeed{action: "rotate", on: sp}, req: fixed("/v1/rotation/policies/"+sp, nil)},
		"POST /v1/rotation/policies/{project}/{env}/{name}/disable": {need: authzNeed{action: "rotate", on: sp}, state: policy,
			req: func(t *testing.T, _ int) (string, any) {
				e.mustDo(t, admin, "PUT", "/v1/rotation/policies/"+sp, basePolicy, 200)
				return "/v1/rotation/policies/" + sp + "/disable", nil
			}},
		"POST /v1/rotation/rotate/{project}/{env}/{name}": {need: authzNeed{action: "rotate", on: sp},
			req: func(t *testing.T, _ int) (string, any) {
				if inflight(t) > 0 {
					e.mustDo(t, admin, "POST", "/v1/rotation/rollback/"+sp, nil, 200)
				}
				return "/v1/rotation/rotate/" + sp, nil
			},
			state: func(t *testing.T) string { return fmt.Sprint(secretVersion(t), " in flight ", inflight(t)) }},
		"POST /v1/rotation/bulk":                          {need: authzNeed{anyToken: true}, req: fixed("/v1/rotation/bulk", map[string]any{"scope": "payments/*/*", "dry_run": true})},
		"GET /v1/rotation/bulk/{id}":                      {need: authzNeed{owner: "rotate-env"}, req: fixed("/v1/rotation/bulk/"+job.ID, nil)},
		"GET /v1/rotation/status":                         {need: authzNeed{anyToken: true}, req: fixed("/v1/rotation/status", nil)},
		"GET /v1/rotation/history/{project}/{env}/{name}": {need: authzNeed{action: "rotate", on: sp}, req: fixed("/v1/rotation/history/"+sp, nil)},
		"POST /v1/rotation/rollback/{project}/{env}/{name}": {need: authzNeed{action: "rotate", on: sp},
			req: func(t *testing.T, _ int) (string, any) {
				if inflight(t) == 0 {
					e.mustDo(t, admin, "POST", "/v1/rotation/rotate/"+sp, nil, 200)
				}
				return "/v1/rotation/rollback/" + sp, nil
			},
			state: func(t *testing.T) string { return fmt.Sprint(secretVersion(t), " in flight ", inflight(t)) }},

		// Dynamic sources and leases (docs/dynamic.md): admin on a source
		// and read on its admin secret to write it, read to see and lease
		// it; a lease is its token's, or under a revoke grant.
		"GET /v1/dynamic": {need: authzNeed{anyToken: true}, req: fixed("/v1/dynamic", nil)},
		"PUT /v1/dynamic/{project}/{env}/{name}": {need: authzNeed{delegate: []string{"admin:" + dsp, "read:payments/dev/PG_ADMIN_URL"}}, state: sourceTTL,
			req: func(_ *testing.T, i int) (string, any) {
				return "/v1/dynamic/" + dsp, sourceBody(fmt.Sprintf("%ds", 60+i))
			}},
		"GET /v1/dynamic/{project}/{env}/{name}": {need: authzNeed{action: "read", on: dsp}, req: fixed("/v1/dynamic/"+dsp, nil)},
		"DELETE /v1/dynamic/{project}/{env}/{name}": {need: authzNeed{action: "admin", on: "payments/prod/DBV"},
			req: func(t *testing.T, _ int) (string, any) {
				e.mustDo(t, admin, "PUT", "/v1/dynamic/payments/prod/DBV", sourceBody("15m"), 200)
				return "/v1/dynamic/payments/prod/DBV", nil
			},
			state: exists(func() error { _, err := e.db.DynamicSource(ctx, "payments", "prod", "DBV"); return err })},
		"POST /v1/dynamic/{project}/{env}/{name}/lease": {need: authzNeed{action: "read", on: dsp}, ok: []int{201}, state: leaseCount,
			req: fixed("/v1/dynamic/"+dsp+"/lease", nil)},
		"GET /v1/leases":         {need: authzNeed{anyToken: true}, req: fixed("/v1/leases?live=true", nil)},
		"POST /v1/leases/revoke": {need: authzNeed{anyToken: true}, req: fixed("/v1/leases/revoke", map[string]any{"prefix": "payments/prod/NOLEASE"})},
		"GET /v1/leases/{id}":    {need: authzNeed{lessee: "lessee", action: "revoke", on: dsp}, req: fixed("/v1/leases/"+standingLease, nil)},
		"POST /v1/leases/{id}/renew": {need: authzNeed{lessee: "lessee", action: "revoke", on: dsp},
			req: fixed("/v1/leases/"+standingLease+"/renew", map[string]any{"increment": "10m"})},
		"POST /v1/leases/{id}/revoke": {need: authzNeed{lessee: "lessee", action: "revoke", on: dsp},
			req: func(t *testing.T, _ int) (string, any) {
				victimLease = newLease(t)
				return "/v1/leases/" + victimLease + "/revoke", nil
			},
			state: func(t *testing.T) string {
				l, err := e.db.Lease(ctx, victimLease)
				must(t, err)
				return string(l.State)
			}},
		// The gateway's routes: managed with admin on the secrets a route
		// injects, seen by its users too; lists filter.
		"GET /v1/gateway/routes": {need: authzNeed{anyToken: true}, req: fixed("/v1/gateway/routes", nil)},
		"POST /v1/gateway/routes": {need: authzNeed{action: "admin", on: sp, noJIT: true}, ok: []int{201},
			req: func(_ *testing.T, i int) (string, any) {
				fresh = fmt.Sprint("gw-fresh-", i)
				return "/v1/gateway/routes", gwRoute(fresh)
			},
			state: routeExists(&fresh)},
		"GET /v1/gateway/routes/{route}": {need: authzNeed{routeUse: "matrix", on: sp}, req: fixed("/v1/gateway/routes/matrix", nil)},
		"DELETE /v1/gateway/routes/{route}": {need: authzNeed{action: "admin", on: sp, noJIT: true},
			req: func(t *testing.T, i int) (string, any) {
				victimGWRoute = fmt.Sprint("gw-victim-", i)
				e.mustDo(t, admin, "POST", "/v1/gateway/routes", gwRoute(victimGWRoute), 201)
				return "/v1/gateway/routes/" + victimGWRoute, nil
			},
			state: routeExists(&victimGWRoute)},

		// Scanning.
		"POST /v1/scan/fingerprints": {need: authzNeed{anyToken: true},
			req: fixed("/v1/scan/fingerprints", map[string]any{"key": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))})},

		// The Vault API (docs/vault.md): the grants of the native route each
		// stands for.
		"GET /v1/{mount}/data/{path...}":    {vault: true, need: authzNeed{action: "read", on: sp}, req: fixed("/v1/payments/data/prod/STRIPE_KEY", nil)},
		"POST /v1/{mount}/data/{path...}":   {vault: true, need: authzNeed{action: "write", on: sp}, state: secretVersion, req: fixed("/v1/payments/data/prod/STRIPE_KEY", kvWrite)},
		"PUT /v1/{mount}/data/{path...}":    {vault: true, need: authzNeed{action: "write", on: sp}, state: secretVersion, req: fixed("/v1/payments/data/prod/STRIPE_KEY", kvWrite)},
		"DELETE /v1/{mount}/data/{path...}": {vault: true, need: authzNeed{action: "write", on: vaultKey}, ok: []int{204}, state: versionStates, req: fixed("/v1/payments/data/prod/VAULT_KEY", nil)},
		"POST /v1/{mount}/delete/{path...}": {vault: true, need: authzNeed{action: "write", on: vaultKey}, ok: []int{204}, state: versionStates,
			req: fixed("/v1/payments/delete/prod/VAULT_KEY", map[string]any{"versions": []int{1}})},
		"POST /v1/{mount}/undelete/{path...}": {vault: true, need: authzNeed{action: "write", on: vaultKey}, ok: []int{204}, state: versionStates,
			req: func(t *testing.T, _ int) (string, any) {
				e.mustDo(t, admin, "POST", "/v1/payments/delete/prod/VAULT_KEY", map[string]any{"versions": []int{2}}, 204)
				return "/v1/payments/undelete/prod/VAULT_KEY", map[string]any{"versions": []int{2}}
			}},
		"POST /v1/{mount}/destroy/{path...}": {vault: true, need: authzNeed{action: "admin", on: vaultKey}, ok: []int{204}, state: versionStates,
			req: fixed("/v1/payments/destroy/prod/VAULT_KEY", map[string]any{"versions": []int{1}})},
		"GET /v1/{mount}/metadata/{path...}":  {vault: true, need: authzNeed{action: "read", on: sp}, req: fixed("/v1/payments/metadata/prod/STRIPE_KEY", nil)},
		"LIST /v1/{mount}/metadata/{path...}": {vault: true, need: authzNeed{action: "read", anyIn: "payments/prod"}, req: fixed("/v1/payments/metadata/prod/", nil)},
		"POST /v1/auth/jwt/login": {vault: true, need: authzNeed{public: true},
			req: func(t *testing.T, _ int) (string, any) {
				return "/v1/auth/jwt/login", map[string]any{"role": "jit-narrow", "jwt": e.jwt(t)}
			}},
		"GET /v1/auth/token/lookup-self":           {vault: true, need: authzNeed{anyToken: true}, req: fixed("/v1/auth/token/lookup-self", nil)},
		"POST /v1/auth/token/renew-self":           {vault: true, need: authzNeed{anyToken: true}, req: fixed("/v1/auth/token/renew-self", map[string]any{"increment": "1h"})},
		"POST /v1/auth/token/revoke-self":          {vault: true, self: true, need: authzNeed{anyToken: true}, ok: []int{204}, req: fixed("/v1/auth/token/revoke-self", nil)},
		"GET /v1/sys/health":                       {vault: true, need: authzNeed{public: true}, req: fixed("/v1/sys/health", nil)},
		"GET /v1/sys/mounts":                       {vault: true, need: authzNeed{anyToken: true}, req: fixed("/v1/sys/mounts", nil)},
		"GET /v1/sys/internal/ui/mounts/{path...}": {vault: true, need: authzNeed{inProject: "payments"}, req: fixed("/v1/sys/internal/ui/mounts/payments/prod/STRIPE_KEY", nil)},
	}

	// The table and the route table agree, both ways; a route's variants
	// ("ROUTE #what") run right after it.
	routes := e.api.Routes()
	var keys []string
	for _, r := range routes {
		if _, ok := table[r]; !ok {
			t.Errorf("route %s has no entry in the authorization matrix: say who may call it in TestAuthorizationMatrixGenerated's table", r)
		}
		keys = append(keys, r)
		var variants []string
		for k := range table {
			if strings.HasPrefix(k, r+" #") {
				variants = append(variants, k)
			}
		}
		slices.Sort(variants)
		keys = append(keys, variants...)
	}
	for k := range table {
		if r, _, _ := strings.Cut(k, " #"); !slices.Contains(routes, r) {
			t.Errorf("the authorization matrix names %s, which the server does not serve", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	var results []authzResult
	var minted []string
	run := func(ps []*authzPrincipal) {
		n := 0
		for _, route := range keys {
			c := table[route]
			method, _, _ := strings.Cut(route, " ")
			ok := c.ok
			if ok == nil {
				ok = []int{200}
			}
			// Refused calls first, so each meets the state no allowed
			// call has touched yet.
			order := slices.Clone(ps)
			rank := func(p *authzPrincipal) int {
				if c.need.allows(t, p) {
					return 1
				}
				return 0
			}
			slices.SortStableFunc(order, func(a, b *authzPrincipal) int { return rank(a) - rank(b) })
			allowedOK := 0
			t.Run(route, func(t *testing.T) {
				for _, p := range order {
					n++
					allowed := c.need.allows(t, p)
					c.need.crossCheck(t, p, allowed)
					path, body := c.req(t, n)
					var before string
					if c.state != nil {
						before = c.state(t)
					}
					caller := p
					if c.self && !p.refused {
						// A token of its own, with the principal's grants, to revoke.
						self := *p
						self.id, self.secret = e.mustToken(t, admin, fmt.Sprintf("self-%d", n), "", p.grants...)
						caller = &self
					}
					got, reqID, b := e.send(t, caller.secret, method, path, body, c.stream)
					results = append(results, authzResult{route: route, who: p.name, reqID: reqID, status: got, public: c.need.public, p: caller})
					var want []int
					switch {
					case allowed:
						want = ok
					case p.refused && c.vault:
						want = []int{403}
					case p.refused:
						want = []int{401}
					case c.need.owner != "", c.need.lessee != "":
						want = []int{404}
					default:
						want = []int{403}
					}
					if !slices.Contains(want, got) {
						t.Errorf("%s as %s %v (needs %s): got %d %s; want %d", path, p.name, p.grants, c.need, got, b, want[0])
						continue
					}
					if allowed && got == ok[0] {
						allowedOK++
					}
					if !allowed && c.state != nil {
						if after := c.state(t); after != before {
							t.Errorf("%s as %s, refused with %d, changed %q to %q", path, p.name, got, before, after)
						}
					}
					var eb api.ErrorBody
					var vb struct{ Errors []string }
					switch {
					case allowed:
					case c.vault && (json.Unmarshal(b, &vb) != nil || len(vb.Errors) == 0 || !strings.HasPrefix(vb.Errors[0], "permission denied")):
						t.Errorf("%s as %s: got error body %s; want Vault's errors, permission denied", path, p.name, b)
					case !c.vault && (json.Unmarshal(b, &eb) != nil || eb.Error.Code != refusalCode[got]):
						t.Errorf("%s as %s: got error body %s; want code %s", path, p.name, b, refusalCode[got])
					}
					var resp struct {
						Secret string
						Auth   struct {
							ClientToken string `json:"client_token"`
						}
					}
					if json.Unmarshal(b, &resp) == nil {
						for _, s := range []string{resp.Secret, resp.Auth.ClientToken, caller.secret} {
							if s != p.secret && tokenward.TokenChecksumValid(s) {
								minted = append(minted, s) // checked against the trail below
							}
						}
					}
				}
				var who []string
				for _, p := range order {
					if c.need.allows(t, p) {
						who = append(who, p.name)
					}
				}
				t.Logf("needs %s; allowed: %s", c.need, strings.Join(who, " "))
				if len(who) > 0 && allowedOK == 0 {
					t.Errorf("no allowed call got %d: the fixture is wrong, and the allowed side of this route is untested", ok[0])
				}
			})
		}
	}
	run(ps)
	// The same just-in-time token, past its job (its 15 minutes): refused
	// everywhere a token is needed.
	e.clock.Add(16 * time.Minute)
	jitAfter := *jit
	jitAfter.name, jitAfter.refused = "jit-after-job", true
	run([]*authzPrincipal{&jitAfter})
	if got, b := e.do(t, jit.secret, "GET", "/v1/tokens/self", nil); got != 401 || !strings.Contains(string(b), "token "+jit.id+" expired") {
		t.Fatalf("JIT token past its job: got %d %s; want 401 naming it expired", got, b)
	}

	// The trail has every call to a route that needs a token — a refusal
	// as denied, with the token named when the token is known — and no
	// token, anywhere in it.
	must(t, e.broker.Flush(ctx))
	entries := map[string]*tokenward.AuditEntry{}
	secrets := minted
	for _, p := range ps {
		if len(p.secret) > 0 {
			secrets = append(secrets, p.secret)
		}
	}
	for en, err := range e.db.AuditEntries(ctx) {
		must(t, err)
		b, _ := json.Marshal(en)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("audit entry %d holds a token: %s", en.Seq, b)
				break
			}
		}
		if en.RequestID != "" {
			entries[en.RequestID] = en
		}
	}
	denied := 0
	for _, r := range results {
		en := entries[r.reqID]
		if r.public {
			continue
		}
		if en == nil {
			t.Errorf("%s as %s (%d): no audit entry for request %s", r.route, r.who, r.status, r.reqID)
			continue
		}
		wantOutcome := tokenward.OutcomeAllowed
		switch r.status {
		case 401, 403:
			wantOutcome = tokenward.OutcomeDenied
			denied++
		case 404:
			wantOutcome = tokenward.OutcomeError
		}
		wantToken := r.p.id
		if r.p.name == "none" || r.p.name == "malformed" || r.p.name == "badsum" || r.p.name == "unknown" {
			wantToken = ""
		}
		if en.Status != r.status || en.Outcome != wantOutcome || en.TokenID != wantToken {
			t.Errorf("%s as %s: got audit entry %d %s token %q; want %d %s token %q", r.route, r.who, en.Status, en.Outcome, en.TokenID, r.status, wantOutcome, wantToken)
		}
	}
	t.Logf("%d requests over %d routes (%d entries), %d refused with 401/403, all audited", len(results), len(routes), len(keys), denied)
}
