// Package vaultapi speaks the part of HashiCorp Vault's HTTP API that CI
// tools and secret operators use — KV v2, JWT login, token self-service,
// sys/health and sys/mounts — over tokenward's core, so existing Vault
// clients read tokenward secrets unchanged. A Vault mount is a tokenward
// project and a KV path is env/name (docs/vault.md). internal/httpapi
// mounts it: it authenticates, audits and counts every request as it does
// its own.
package vaultapi

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tokenward/tokenward"
)

// Op is one Vault operation tokenward serves.
type Op string

// The operations.
const (
	OpKVRead       Op = "kv.read"   // GET {mount}/data/{env}/{name}
	OpKVWrite      Op = "kv.write"  // POST/PUT {mount}/data/{env}/{name}
	OpKVDelete     Op = "kv.delete" // DELETE {mount}/data/{env}/{name}: the latest version
	OpKVDeleteVers Op = "kv.delete_versions"
	OpKVUndelete   Op = "kv.undelete"
	OpKVDestroy    Op = "kv.destroy"
	OpKVMetadata   Op = "kv.metadata" // GET {mount}/metadata/{env}/{name}
	OpKVList       Op = "kv.list"     // LIST (or GET ?list=true) {mount}/metadata/[{env}]
	OpJWTLogin     Op = "auth.jwt_login"
	OpLookupSelf   Op = "token.lookup_self"
	OpRenewSelf    Op = "token.renew_self"
	OpRevokeSelf   Op = "token.revoke_self"
	OpHealth       Op = "sys.health"
	OpMounts       Op = "sys.mounts"
	OpUIMount      Op = "sys.ui_mount" // GET sys/internal/ui/mounts/{path}: the vault CLI's KV version probe
)

// Route is one Vault operation as tokenward's route table lists it.
// Pattern documents the path; Parse, not a mux, matches it.
type Route struct {
	Method, Pattern string
	Op              Op
	Action          string // the audit action, the native API's where one exists
	Public          bool   // served without a token
	Audited         bool   // public, but audited all the same (login)
}

// Routes is every Vault operation tokenward serves.
var Routes = []Route{
	{Method: "GET", Pattern: "/v1/{mount}/data/{path...}", Op: OpKVRead, Action: "secret.read"},
	{Method: "POST", Pattern: "/v1/{mount}/data/{path...}", Op: OpKVWrite, Action: "secret.write"},
	{Method: "PUT", Pattern: "/v1/{mount}/data/{path...}", Op: OpKVWrite, Action: "secret.write"},
	{Method: "DELETE", Pattern: "/v1/{mount}/data/{path...}", Op: OpKVDelete, Action: "secret.delete"},
	{Method: "POST", Pattern: "/v1/{mount}/delete/{path...}", Op: OpKVDeleteVers, Action: "secret.delete"},
	{Method: "POST", Pattern: "/v1/{mount}/undelete/{path...}", Op: OpKVUndelete, Action: "secret.undelete"},
	{Method: "POST", Pattern: "/v1/{mount}/destroy/{path...}", Op: OpKVDestroy, Action: "secret.destroy"},
	{Method: "GET", Pattern: "/v1/{mount}/metadata/{path...}", Op: OpKVMetadata, Action: "secret.history"},
	{Method: "LIST", Pattern: "/v1/{mount}/metadata/{path...}", Op: OpKVList, Action: "secret.list"},
	{Method: "POST", Pattern: "/v1/auth/jwt/login", Op: OpJWTLogin, Action: "auth.oidc_login", Public: true, Audited: true},
	{Method: "GET", Pattern: "/v1/auth/token/lookup-self", Op: OpLookupSelf, Action: "token.self"},
	{Method: "POST", Pattern: "/v1/auth/token/renew-self", Op: OpRenewSelf, Action: "token.renew"},
	{Method: "POST", Pattern: "/v1/auth/token/revoke-self", Op: OpRevokeSelf, Action: "token.revoke"},
	{Method: "GET", Pattern: "/v1/sys/health", Op: OpHealth, Action: "health", Public: true},
	{Method: "GET", Pattern: "/v1/sys/mounts", Op: OpMounts, Action: "project.list"},
	{Method: "GET", Pattern: "/v1/sys/internal/ui/mounts/{path...}", Op: OpUIMount, Action: "project.read"},
}

// kvOps are the operations under {mount}/{segment}/, by segment.
var kvOps = map[string]bool{"data": true, "metadata": true, "delete": true, "undelete": true, "destroy": true}

// Request is a Vault request as Parse reads it.
type Request struct {
	Route *Route // nil: a Vault path tokenward does not serve (Err says why)
	Mount string // the project, for KV and sys/internal/ui/mounts
	// Env and Name are the KV path: both for an operation on a secret;
	// Env or neither for a list.
	Env, Name string
	// Err refuses the request: a path the route cannot serve, or (with a
	// nil Route) no such route.
	Err error
}

// Parse reports whether a request is for the Vault API and, when it is,
// which operation it names. escapedPath is the request's path as sent
// (URL.EscapedPath); native reports whether a first segment under /v1/ is
// one of tokenward's own (such a path is never Vault's, so those names
// cannot be mounts).
//
// A request is Vault's when its method is LIST, its path is under
// /v1/sys/, /v1/auth/jwt/ or /v1/auth/token/, or its second segment is
// data, metadata, delete, undelete or destroy below a first segment that is
// not native. Every segment is checked here, before any path cleaning: an
// empty, "." or ".." segment (also percent-encoded) or an encoded '/' is
// refused, except the one trailing '/' of a list.
func Parse(method, escapedPath, rawQuery string, native func(string) bool) (Request, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/v1/")
	if !ok {
		return Request{}, false
	}
	// A native name stays one percent-encoded (%73ecrets): no alias of it
	// becomes a mount.
	isNative := func(seg string) bool {
		if native(seg) {
			return true
		}
		u, err := url.PathUnescape(seg)
		return err == nil && u != seg && native(u)
	}
	// The common case, a native request, is decided on the first two
	// segments without splitting the path.
	first, after, _ := strings.Cut(rest, "/")
	second, _, _ := strings.Cut(after, "/")
	if method != "LIST" && first != "sys" && (first != "auth" || second != "jwt" && second != "token") && (!kvOps[second] || isNative(first)) {
		return Request{}, false
	}
	segs := strings.Split(rest, "/")
	switch {
	case segs[0] == "sys":
		return parseSys(method, segs[1:]), true
	case segs[0] == "auth" && len(segs) > 1 && (segs[1] == "jwt" || segs[1] == "token"):
		return parseAuth(method, segs[1:]), true
	case method == "LIST" && isNative(segs[0]):
		return notFound(), true // no native route lists
	case method == "LIST", len(segs) > 1 && kvOps[segs[1]] && !isNative(segs[0]):
		return parseKV(method, segs, rawQuery), true
	}
	return Request{}, false
}

func notFound() Request {
	return Request{Err: tokenward.Errorf(tokenward.ENOTFOUND, "no handler for route")}
}

func notAllowed() Request {
	return Request{Err: tokenward.Errorf(tokenward.ENOTALLOWED, "unsupported operation")}
}

// route finds the route for method and op; a HEAD is served as a GET.
func route(method string, op Op) (*Route, bool) {
	if method == "HEAD" {
		method = "GET"
	}
	for i := range Routes {
		if Routes[i].Op == op && Routes[i].Method == method {
			return &Routes[i], true
		}
	}
	return nil, false
}

// request is a Request for op, or the refusal of method.
func request(method string, op Op) Request {
	rt, ok := route(method, op)
	if !ok {
		return notAllowed()
	}
	return Request{Route: rt}
}

func parseSys(method string, segs []string) Request {
	switch {
	case len(segs) == 1 && segs[0] == "health":
		return request(method, OpHealth)
	case len(segs) == 1 && segs[0] == "mounts":
		return request(method, OpMounts)
	case len(segs) >= 4 && segs[0] == "internal" && segs[1] == "ui" && segs[2] == "mounts":
		req := request(method, OpUIMount)
		if req.Route != nil {
			// The vault CLI asks about the path it will use, mount first.
			req.Mount, req.Err = segment("mount", segs[3])
			if req.Err == nil {
				req.Err = tokenward.ValidateProjectName(req.Mount)
			}
		}
		return req
	}
	return notFound()
}

func parseAuth(method string, segs []string) Request {
	if len(segs) != 2 {
		return notFound()
	}
	switch segs[0] + "/" + segs[1] {
	case "jwt/login":
		if method == "PUT" {
			method = "POST"
		}
		return request(method, OpJWTLogin)
	case "token/lookup-self":
		return request(method, OpLookupSelf)
	case "token/renew-self":
		if method == "PUT" {
			method = "POST"
		}
		return request(method, OpRenewSelf)
	case "token/revoke-self":
		if method == "PUT" {
			method = "POST"
		}
		return request(method, OpRevokeSelf)
	}
	return notFound()
}

func parseKV(method string, segs []string, rawQuery string) Request {
	if len(segs) < 2 || !kvOps[segs[1]] {
		return notFound()
	}
	if method == "HEAD" {
		method = "GET"
	}
	list := method == "LIST"
	if segs[1] == "metadata" && method == "GET" {
		// Vault takes every form strconv.ParseBool does (true, 1, t, True…).
		if q, err := url.ParseQuery(rawQuery); err == nil {
			list, _ = strconv.ParseBool(q.Get("list"))
		}
	}
	var req Request
	switch {
	case list && segs[1] == "metadata":
		req = request("LIST", OpKVList)
	case list:
		return notAllowed()
	case segs[1] == "data":
		req = request(method, map[string]Op{"GET": OpKVRead, "POST": OpKVWrite, "PUT": OpKVWrite, "DELETE": OpKVDelete}[method])
	case segs[1] == "metadata":
		req = request(method, OpKVMetadata)
	default:
		if method == "PUT" {
			method = "POST" // Vault takes either for a write
		}
		req = request(method, map[string]Op{"delete": OpKVDeleteVers, "undelete": OpKVUndelete, "destroy": OpKVDestroy}[segs[1]])
	}
	if req.Route == nil {
		return req
	}
	if req.Mount, req.Err = segment("mount", segs[0]); req.Err == nil {
		req.Err = tokenward.ValidateProjectName(req.Mount)
	}
	if req.Err == nil {
		req.Env, req.Name, req.Err = kvPath(segs[2:], list)
	}
	return req
}

// kvPath reads the KV path env/name (a list: "", env, with an optional
// trailing '/').
func kvPath(segs []string, list bool) (env, name string, err error) {
	if list && len(segs) > 0 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1]
	}
	vals := make([]string, len(segs))
	for i, s := range segs {
		kind := "path segment"
		switch i {
		case 0:
			kind = "environment"
		case 1:
			kind = "secret name"
		}
		if vals[i], err = segment(kind, s); err != nil {
			return "", "", err
		}
	}
	switch {
	case list && len(vals) == 0:
		return "", "", nil
	case list && len(vals) == 1:
		return vals[0], "", tokenward.ValidateEnvName(vals[0])
	case list:
		// env/name is a secret, not a folder: nothing is under it.
		return "", "", tokenward.Errorf(tokenward.ENOTFOUND, "nothing to list below environment/name")
	case len(vals) != 2:
		return "", "", tokenward.Errorf(tokenward.EINVALID, "a KV path in tokenward is environment/NAME (%d segments given)", len(vals))
	}
	if err := tokenward.ValidateEnvName(vals[0]); err != nil {
		return "", "", err
	}
	return vals[0], vals[1], tokenward.ValidateSecretName(vals[1])
}

// segment decodes one escaped path segment and refuses what a path
// cleaner would change or what holds a '/'.
func segment(kind, s string) (string, error) {
	v, err := url.PathUnescape(s)
	if err != nil {
		return "", tokenward.Errorf(tokenward.EINVALID, "%s is not a valid escaped path segment", kind)
	}
	return v, tokenward.ValidatePathSegment(kind, v)
}
