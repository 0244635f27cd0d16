package vaultapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/buildinfo"
	"github.com/tokenward/tokenward/internal/core"
)

// API serves the Vault operations over a core.Core.
type API struct {
	Core *core.Core
	// Native reports whether a name is a first path segment of tokenward's
	// own API: such a project cannot be a mount and is not listed as one.
	Native func(string) bool
}

// Call is one Vault request as the API sees it; the server authenticates
// it (Token) and audits it with what the handler fills in.
type Call struct {
	R         *http.Request
	Token     *tokenward.Token // nil on public routes
	Req       Request
	RequestID string
	// Login exchanges a CI identity token for a just-in-time token under
	// the binding role, as POST /v1/auth/oidc/login does (and audits).
	Login func(role, jwt string) (*tokenward.Token, string, error)

	Resource string            // what the request touched, for the audit entry
	Meta     map[string]string // non-secret facts for the audit entry
}

// Response is Vault's response envelope.
type Response struct {
	RequestID     string   `json:"request_id"`
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int      `json:"lease_duration"`
	Data          any      `json:"data"`
	WrapInfo      any      `json:"wrap_info"`
	Warnings      []string `json:"warnings"`
	Auth          *Auth    `json:"auth"`
	MountType     string   `json:"mount_type,omitempty"`
}

// Auth is the auth block of a login or a renewal.
type Auth struct {
	ClientToken   string            `json:"client_token"`
	Accessor      string            `json:"accessor"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
	LeaseDuration int               `json:"lease_duration"`
	Renewable     bool              `json:"renewable"`
	EntityID      string            `json:"entity_id"`
	TokenType     string            `json:"token_type"`
	Orphan        bool              `json:"orphan"`
}

// ErrorResponse is Vault's error body.
type ErrorResponse struct {
	Errors []string `json:"errors"`
}

// ErrorBody is the Vault error body for err: its client-safe message,
// prefixed as Vault words a refusal. (A failed check-and-set is worded by
// kvWrite, which alone knows one was asked for.)
func ErrorBody(err error) *ErrorResponse {
	msg := tokenward.ErrorMessage(err)
	switch tokenward.ErrorCode(err) {
	case tokenward.EUNAUTHORIZED, tokenward.EFORBIDDEN:
		msg = "permission denied: " + msg
	}
	return &ErrorResponse{Errors: []string{msg}}
}

// WrapTTLHeader is the header with which a Vault client asks for a
// response-wrapped answer.
const WrapTTLHeader = "X-Vault-Wrap-TTL"

// Token is the token a Vault client presents: X-Vault-Token, else
// Authorization: Bearer.
func Token(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get("X-Vault-Token")); t != "" {
		return t
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Serve runs the operation c.Req names.
func (a *API) Serve(c *Call) (int, any, error) {
	if c.Req.Mount != "" {
		c.Resource = c.Req.Mount
		if c.Req.Env != "" {
			c.Resource += "/" + c.Req.Env
			if c.Req.Name != "" {
				c.Resource += "/" + c.Req.Name
			}
		}
	}
	c.Meta = map[string]string{"api": "vault"}
	if c.Req.Err != nil {
		return 0, nil, c.Req.Err
	}
	if c.R.Header.Get(WrapTTLHeader) != "" {
		// A client asking for a wrapped answer expects a single-use
		// wrapping token, not the secret (`vault kv get -wrap-ttl` would
		// print the value where its user meant to hand on a token):
		// refused rather than answered unwrapped.
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "response wrapping (%s) is not supported by tokenward; ask without it", WrapTTLHeader)
	}
	if h := a.handlers()[c.Req.Route.Op]; h != nil {
		return h(c)
	}
	return 0, nil, tokenward.Errorf(tokenward.ENOTFOUND, "no handler for route")
}

// handlers are the operations' handlers.
func (a *API) handlers() map[Op]func(*Call) (int, any, error) {
	change := func(ch core.VersionChange) func(*Call) (int, any, error) {
		return func(c *Call) (int, any, error) { return a.kvChange(c, ch) }
	}
	return map[Op]func(*Call) (int, any, error){
		OpKVRead: a.kvRead, OpKVWrite: a.kvWrite, OpKVMetadata: a.kvMetadata, OpKVList: a.kvList,
		OpKVDelete: change(core.DeleteVersions), OpKVDeleteVers: change(core.DeleteVersions),
		OpKVUndelete: change(core.UndeleteVersions), OpKVDestroy: change(core.DestroyVersions),
		OpJWTLogin: a.login, OpLookupSelf: a.lookupSelf, OpRenewSelf: a.renewSelf, OpRevokeSelf: a.revokeSelf,
		OpHealth: a.health, OpMounts: a.mounts, OpUIMount: a.uiMount,
	}
}

func (c *Call) respond(data any) *Response {
	return &Response{RequestID: c.RequestID, Data: data}
}

// readBody decodes a JSON body. Vault clients do not all send a content
// type, and Vault ignores fields it does not know, so neither is checked;
// the size is (by the server).
func readBody(r *http.Request, v any) error {
	err := json.NewDecoder(r.Body).Decode(v)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return tokenward.Errorf(tokenward.ETOOLARGE, "request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return tokenward.Errorf(tokenward.EINVALID, "request body is empty")
	}
	return tokenward.Errorf(tokenward.EINVALID, "malformed JSON")
}

// vaultTime is a time as Vault writes it ("" for none).
func vaultTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// versionMeta is the metadata of one version.
func versionMeta(v *tokenward.SecretVersion, st tokenward.VersionState) map[string]any {
	return map[string]any{
		"version": v.Version, "created_time": vaultTime(v.CreatedAt), "deletion_time": vaultTime(st.DeletedAt),
		"destroyed": !st.DestroyedAt.IsZero(), "custom_metadata": nil,
	}
}

func (a *API) kvRead(c *Call) (int, any, error) {
	version := 0
	if s := c.R.URL.Query().Get("version"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "version must be a whole number")
		}
		version = n
	}
	ctx, q := c.R.Context(), c.Req
	st, err := a.Core.SecretVersionsState(ctx, c.Token, q.Mount, q.Env, q.Name)
	if err != nil {
		return 0, nil, err
	}
	if version == 0 {
		version = st.Secret.Version
	}
	c.Meta["version"] = strconv.Itoa(version)
	var v *tokenward.SecretVersion
	for _, sv := range st.Versions {
		if sv.Version == version {
			v = sv
		}
	}
	if v == nil {
		return 0, nil, tokenward.Errorf(tokenward.ENOTFOUND, "secret %s has no version %d", st.Secret.Path(), version)
	}
	meta := versionMeta(v, st.States[version])
	meta["custom_metadata"] = customMetadata(st.Secret)
	if vs := st.States[version]; !vs.DeletedAt.IsZero() || !vs.DestroyedAt.IsZero() {
		// Vault's answer for a deleted or destroyed version: 404 with the
		// version's metadata and no data.
		return http.StatusNotFound, c.respond(map[string]any{"data": nil, "metadata": meta}), nil
	}
	_, value, err := a.Core.GetSecret(ctx, c.Token, q.Mount, q.Env, q.Name, version)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.respond(map[string]any{"data": DecodeValue(value), "metadata": meta}), nil
}

// customMetadata shows tokenward's metadata fields as Vault's custom
// metadata (read-only here).
func customMetadata(s *tokenward.Secret) map[string]string {
	m := map[string]string{}
	if s.Owner != "" {
		m["owner"] = s.Owner
	}
	if s.Description != "" {
		m["description"] = s.Description
	}
	if len(s.Tags) > 0 {
		m["tags"] = strings.Join(s.Tags, ",")
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

type writeRequest struct {
	Data    map[string]json.RawMessage `json:"data"`
	Options struct {
		CAS *int `json:"cas"`
	} `json:"options"`
}

func (a *API) kvWrite(c *Call) (int, any, error) {
	var req writeRequest
	if err := readBody(c.R, &req); err != nil {
		return 0, nil, err
	}
	value, err := EncodeData(req.Data)
	if err != nil {
		return 0, nil, err
	}
	q := c.Req
	meta, err := a.Core.PutSecret(c.R.Context(), c.Token, core.PutSecretInput{Project: q.Mount, Env: q.Env, Name: q.Name, Value: value, IfVersion: req.Options.CAS})
	if err != nil {
		// Worded as Vault does only for core's check-and-set refusal, not for
		// other conflicts (a retired environment).
		if req.Options.CAS != nil && tokenward.IsVersionConflict(err) {
			err = tokenward.Errorf(tokenward.ECONFLICT, "check-and-set parameter did not match the current version: %s", tokenward.ErrorMessage(err))
		}
		return 0, nil, err
	}
	c.Meta["version"] = strconv.Itoa(meta.Version)
	return http.StatusOK, c.respond(map[string]any{
		"version": meta.Version, "created_time": vaultTime(meta.UpdatedAt), "deletion_time": "", "destroyed": false, "custom_metadata": nil,
	}), nil
}

func (a *API) kvChange(c *Call, change core.VersionChange) (int, any, error) {
	var versions []int
	if c.Req.Route.Op != OpKVDelete {
		var req struct {
			Versions versionList `json:"versions"`
		}
		if err := readBody(c.R, &req); err != nil {
			return 0, nil, err
		}
		if len(req.Versions) == 0 {
			return 0, nil, tokenward.Errorf(tokenward.EINVALID, "no versions provided")
		}
		versions = req.Versions
	}
	q := c.Req
	vs, err := a.Core.ChangeVersions(c.R.Context(), c.Token, change, q.Mount, q.Env, q.Name, versions)
	if err != nil {
		return 0, nil, err
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	c.Meta["versions"] = strings.Join(s, ",")
	return http.StatusNoContent, nil, nil
}

// versionList is the versions of a delete, undelete or destroy as Vault
// clients send them (Vault's comma-int-slice): an array of numbers or of
// strings holding them, one number, or a string of numbers separated by
// commas (`vault kv destroy -versions=1,2`, `vault write … versions=1,2`).
type versionList []int

func (v *versionList) UnmarshalJSON(b []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		items = []json.RawMessage{b}
	}
	var out versionList
	for _, it := range items {
		s := string(it)
		if str := ""; json.Unmarshal(it, &str) == nil {
			s = str
		}
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				return tokenward.Errorf(tokenward.EINVALID, "versions must be whole numbers")
			}
			out = append(out, n)
		}
	}
	*v = out
	return nil
}

func (a *API) kvMetadata(c *Call) (int, any, error) {
	q := c.Req
	st, err := a.Core.SecretVersionsState(c.R.Context(), c.Token, q.Mount, q.Env, q.Name)
	if err != nil {
		return 0, nil, err
	}
	versions := map[string]any{}
	oldest := 0
	for _, v := range st.Versions {
		m := versionMeta(v, st.States[v.Version])
		delete(m, "version")
		delete(m, "custom_metadata")
		versions[strconv.Itoa(v.Version)] = m
		if oldest == 0 {
			oldest = v.Version
		}
	}
	return http.StatusOK, c.respond(map[string]any{
		"cas_required": false, "created_time": vaultTime(st.Secret.CreatedAt), "updated_time": vaultTime(st.Secret.UpdatedAt),
		"current_version": st.Secret.Version, "oldest_version": oldest, "max_versions": 0, "delete_version_after": "0s",
		"custom_metadata": customMetadata(st.Secret), "versions": versions,
	}), nil
}

func (a *API) kvList(c *Call) (int, any, error) {
	ctx, q := c.R.Context(), c.Req
	keys := []string{}
	if q.Env == "" {
		p, err := a.Core.Project(ctx, c.Token, q.Mount)
		if err != nil {
			return 0, nil, err
		}
		for _, env := range p.Envs {
			if c.Token.Grants.AllowsAnyIn(tokenward.ActionRead, q.Mount, env) {
				keys = append(keys, env+"/")
			}
		}
	} else {
		list, err := a.Core.ListSecrets(ctx, c.Token, q.Mount, q.Env)
		if err != nil {
			return 0, nil, err
		}
		for _, s := range list {
			keys = append(keys, s.Name)
		}
	}
	c.Meta["count"] = strconv.Itoa(len(keys))
	if len(keys) == 0 {
		// Vault answers an empty folder with 404 and no errors.
		return http.StatusNotFound, &ErrorResponse{Errors: []string{}}, nil
	}
	return http.StatusOK, c.respond(map[string]any{"keys": keys}), nil
}

// maxLoginBody bounds a login body: an identity token is at most a few
// kilobytes, and the route is public.
const maxLoginBody = 64 << 10

func (a *API) login(c *Call) (int, any, error) {
	c.R.Body = http.MaxBytesReader(nil, c.R.Body, maxLoginBody)
	var req struct {
		Role string `json:"role"`
		JWT  string `json:"jwt"`
	}
	if err := readBody(c.R, &req); err != nil {
		return 0, nil, err
	}
	if req.JWT == "" {
		return 0, nil, tokenward.Errorf(tokenward.EINVALID, "missing jwt")
	}
	tok, secret, err := c.Login(req.Role, strings.TrimSpace(req.JWT))
	if err != nil {
		return 0, nil, err
	}
	auth := a.auth(tok, secret)
	auth.Metadata["role"] = strings.TrimPrefix(tok.CreatedBy, "binding:")
	return http.StatusOK, &Response{RequestID: c.RequestID, Auth: auth}, nil
}

// auth is the auth block of tok, whose secret is token.
func (a *API) auth(tok *tokenward.Token, token string) *Auth {
	meta := map[string]string{"token_id": tok.ID, "token_name": tok.Name}
	for k, v := range tok.CI {
		meta[k] = v
	}
	policies := tok.Grants.Strings()
	return &Auth{
		ClientToken: token, Accessor: tok.ID, Policies: policies, TokenPolicies: policies, Metadata: meta,
		LeaseDuration: a.ttl(tok), TokenType: "service", Orphan: true,
	}
}

// ttl is the seconds tok has left (0: it does not expire, as Vault's root
// tokens).
func (a *API) ttl(tok *tokenward.Token) int {
	if tok.ExpiresAt.IsZero() {
		return 0
	}
	return max(0, int(tok.ExpiresAt.Sub(a.Core.Now()).Seconds()))
}

func (a *API) lookupSelf(c *Call) (int, any, error) {
	tok := c.Token
	c.Resource = "token:" + tok.ID
	var expire any
	creationTTL := 0
	if !tok.ExpiresAt.IsZero() {
		expire = vaultTime(tok.ExpiresAt)
		creationTTL = int(tok.ExpiresAt.Sub(tok.CreatedAt).Seconds())
	}
	path := "auth/token/create"
	if tok.Kind == tokenward.TokenJIT {
		path = "auth/jwt/login"
	}
	return http.StatusOK, c.respond(map[string]any{
		"id": Token(c.R), "accessor": tok.ID, "display_name": tok.Name, "policies": tok.Grants.Strings(),
		"creation_time": tok.CreatedAt.Unix(), "issue_time": vaultTime(tok.CreatedAt), "expire_time": expire,
		"creation_ttl": creationTTL, "explicit_max_ttl": creationTTL, "ttl": a.ttl(tok), "renewable": false,
		"meta": tok.CI, "num_uses": 0, "orphan": true, "path": path, "type": "service", "entity_id": "",
	}), nil
}

func (a *API) renewSelf(c *Call) (int, any, error) {
	c.Resource = "token:" + c.Token.ID
	resp := &Response{RequestID: c.RequestID, Auth: a.auth(c.Token, Token(c.R))}
	// A tokenward token's expiry is its cap: it is never extended.
	resp.Warnings = []string{"tokenward tokens have a fixed expiry; the TTL was not extended"}
	return http.StatusOK, resp, nil
}

func (a *API) revokeSelf(c *Call) (int, any, error) {
	c.Resource = "token:" + c.Token.ID
	if _, err := a.Core.RevokeToken(c.R.Context(), c.Token, c.Token.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (a *API) health(c *Call) (int, any, error) {
	return http.StatusOK, map[string]any{
		"initialized": true, "sealed": false, "standby": false, "performance_standby": false,
		"replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
		"server_time_utc": a.Core.Now().Unix(), "version": buildinfo.Get().Version, "cluster_name": "tokenward",
	}, nil
}

// mount is a project as a KV v2 mount.
func mount(p *tokenward.Project) map[string]any {
	return map[string]any{
		"type": "kv", "options": map[string]string{"version": "2"}, "description": "tokenward project " + p.Name,
		"accessor": "kv_" + p.Name, "local": false, "seal_wrap": false, "external_entropy_access": false,
		"config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
	}
}

// mountable reports whether a project can be a Vault mount: its name is
// neither Vault's sys nor a first segment of tokenward's own API.
func (a *API) mountable(name string) bool { return name != "sys" && !a.Native(name) }

func (a *API) mounts(c *Call) (int, any, error) {
	ps, err := a.Core.Projects(c.R.Context(), c.Token)
	if err != nil {
		return 0, nil, err
	}
	data := map[string]any{}
	for _, p := range ps {
		if a.mountable(p.Name) {
			data[p.Name+"/"] = mount(p)
		}
	}
	// Vault answers with the mounts both in data and at the top level.
	body := map[string]any{"request_id": c.RequestID, "lease_id": "", "renewable": false, "lease_duration": 0, "data": data, "wrap_info": nil, "warnings": nil, "auth": nil}
	for k, v := range data {
		body[k] = v
	}
	return http.StatusOK, body, nil
}

func (a *API) uiMount(c *Call) (int, any, error) {
	p, err := a.Core.Project(c.R.Context(), c.Token, c.Req.Mount)
	if err != nil {
		return 0, nil, err
	}
	if !a.mountable(p.Name) {
		return 0, nil, tokenward.Errorf(tokenward.ENOTFOUND, "project %s cannot be a Vault mount: its name is a path of tokenward's own API or Vault's sys", p.Name)
	}
	m := mount(p)
	m["path"] = p.Name + "/"
	return http.StatusOK, c.respond(m), nil
}
