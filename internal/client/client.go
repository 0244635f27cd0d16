// Package client is the Go client of tokenward's HTTP API, used by the CLI.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// Client talks to one tokenward server.
type Client struct {
	// Addr is the server's base URL, e.g. http://127.0.0.1:8750.
	Addr string
	// Token is sent as a bearer token; it never appears in an error.
	Token string
	// HTTP is the HTTP client; nil means one with a 30 s timeout.
	HTTP *http.Client
	// UserAgent identifies the caller.
	UserAgent string
}

// New returns a client for addr with token.
func New(addr, token string) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "server address %q: want http(s)://host:port", addr)
	}
	return &Client{Addr: strings.TrimRight(addr, "/"), Token: token, UserAgent: "tokenward-cli"}, nil
}

// TrustCAFile makes the client trust the CA certificates (PEM) in path,
// for servers whose TLS certificate a private CA signed.
func (c *Client) TrustCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Proxy:           http.ProxyFromEnvironment,
	}}
	return nil
}

// ErrUnreachable wraps failures to reach the server at all, so callers can
// fall back (run --fallback).
var ErrUnreachable = errors.New("server unreachable")

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// streamClient is httpClient without its overall timeout, for answers that
// last (an export, an event stream); ctx bounds them.
func (c *Client) streamClient() *http.Client {
	hc := *c.httpClient()
	hc.Timeout = 0
	return &hc
}

// path is a request path. Names enter it through name, checked
// (api.CheckName) and escaped as one segment, so a bad name fails the
// request before it is sent instead of reaching another route.
type path struct {
	s   string
	err error
}

func at(s string) path { return path{s: s} }

// name appends value, a name of kind, as one more segment.
func (p path) name(kind api.Kind, value string) path {
	if p.err == nil {
		p.err = api.CheckName(kind, value)
	}
	p.s += "/" + url.PathEscape(value)
	return p
}

// then appends literal segments or a query.
func (p path) then(s string) path {
	p.s += s
	return p
}

func projectPath(prefix, project string) path {
	return at(prefix).name(api.KindProject, project)
}

func envPath(prefix, project, env string) path {
	return projectPath(prefix, project).name(api.KindEnv, env)
}

func secretPath(project, env, name string) path {
	return envPath("/v1/secrets", project, env).name(api.KindSecret, name)
}

// send sends a request with in (if not nil) as its JSON body. It returns
// the response when the server answered 2xx, and the server's error
// otherwise.
func (c *Client) send(ctx context.Context, hc *http.Client, method string, p path, in any) (*http.Response, error) {
	if p.err != nil {
		return nil, p.err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Addr+p.s, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := noRedirects(hc).Do(req)
	if err != nil {
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, unwrapURL(err))
		}
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "server answered %s: redirects are not followed (they would carry the token and the request body elsewhere); set the server address to the URL it redirects to", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, err)
	}
	var eb api.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Err() != nil {
		return nil, eb.Err()
	}
	return nil, tokenward.Errorf(tokenward.EINTERNAL, "server answered %s", resp.Status)
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method string, p path, in, out any) error {
	resp, err := c.send(ctx, c.httpClient(), method, p, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, p.s, err)
	}
	return nil
}

// noRedirects returns a copy of hc that does not follow
// redirects: following one would send the bearer token (net/http keeps
// Authorization for the same host on another port or scheme, e.g. https to
// http) and, for a 307/308, the request body (a secret value) to wherever
// the answer points, and would turn a PUT or POST answered 301/302/303
// into a GET whose 200 reads as success.
func noRedirects(hc *http.Client) *http.Client {
	cp := *hc
	cp.CheckRedirect = refuseRedirect
	return &cp
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// unwrapURL drops the request URL from a transport error (it holds no
// token, but the inner error reads better).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, "GET", at("/v1/health"), nil, nil)
}

// CreateProject creates a project with environments.
func (c *Client) CreateProject(ctx context.Context, name string, envs []string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "POST", at("/v1/projects"), api.CreateProjectRequest{Name: name, Environments: nonNil(envs)}, &p)
	return &p, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Projects lists projects.
func (c *Client) Projects(ctx context.Context) ([]*tokenward.Project, error) {
	var out api.ProjectList
	err := c.do(ctx, "GET", at("/v1/projects"), nil, &out)
	return out.Projects, err
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, name string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "GET", projectPath("/v1/projects", name), nil, &p)
	return &p, err
}

// CreateEnv adds an environment to a project.
func (c *Client) CreateEnv(ctx context.Context, project, env string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "POST", projectPath("/v1/projects", project).then("/envs"), api.CreateEnvRequest{Name: env}, &p)
	return &p, err
}

// SetSecret writes a new version of a secret.
func (c *Client) SetSecret(ctx context.Context, project, env, name string, in api.PutSecretRequest) (*tokenward.Secret, error) {
	var s tokenward.Secret
	err := c.do(ctx, "PUT", secretPath(project, env, name), in, &s)
	return &s, err
}

// GetSecret reads a version of a secret (0: current).
func (c *Client) GetSecret(ctx context.Context, project, env, name string, version int) (*api.SecretResponse, error) {
	p := secretPath(project, env, name)
	if version > 0 {
		p = p.then("?version=" + strconv.Itoa(version))
	}
	var s api.SecretResponse
	err := c.do(ctx, "GET", p, nil, &s)
	return &s, err
}

// GetSecretLabel reads the version of a secret carrying label: "current",
// "previous" or "pending".
func (c *Client) GetSecretLabel(ctx context.Context, project, env, name, label string) (*api.SecretResponse, error) {
	var s api.SecretResponse
	err := c.do(ctx, "GET", secretPath(project, env, name).then("?version="+url.QueryEscape(label)), nil, &s)
	return &s, err
}

// Secrets lists the secrets of an environment, without values.
func (c *Client) Secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	var out api.SecretList
	err := c.do(ctx, "GET", envPath("/v1/secrets", project, env), nil, &out)
	return out.Secrets, err
}

// EnvValues fetches every secret of project/env the token may read, with
// current values, in one request.
func (c *Client) EnvValues(ctx context.Context, project, env string) (*api.EnvValuesResponse, error) {
	var out api.EnvValuesResponse
	err := c.do(ctx, "GET", envPath("/v1/values", project, env), nil, &out)
	return &out, err
}

// SecretHistory lists a secret's versions.
func (c *Client) SecretHistory(ctx context.Context, project, env, name string) ([]*tokenward.SecretVersion, error) {
	var out api.SecretVersions
	err := c.do(ctx, "GET", secretPath(project, env, name).then("/versions"), nil, &out)
	return out.Versions, err
}

// RollbackSecret writes a new version with the value of version to.
func (c *Client) RollbackSecret(ctx context.Context, project, env, name string, to int) (*tokenward.Secret, error) {
	var s tokenward.Secret
	err := c.do(ctx, "POST", secretPath(project, env, name).then("/rollback"), api.RollbackSecretRequest{To: to}, &s)
	return &s, err
}

// CreateToken mints a token; the returned secret is shown once.
func (c *Client) CreateToken(ctx context.Context, in api.CreateTokenRequest) (*tokenward.Token, string, error) {
	var out api.CreateTokenResponse
	err := c.do(ctx, "POST", at("/v1/tokens"), in, &out)
	return out.Token, out.Secret, err
}

// Tokens lists the tokens the caller may manage.
func (c *Client) Tokens(ctx context.Context) ([]*tokenward.Token, error) {
	var out api.TokenList
	err := c.do(ctx, "GET", at("/v1/tokens"), nil, &out)
	return out.Tokens, err
}

// GetToken returns a token by id or active name.
func (c *Client) GetToken(ctx context.Context, idOrName string) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "GET", at("/v1/tokens").name(api.KindToken, idOrName), nil, &t)
	return &t, err
}

// Self returns the caller's own token record.
func (c *Client) Self(ctx context.Context) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "GET", at("/v1/tokens/self"), nil, &t)
	return &t, err
}

// RevokeToken revokes a token by id or active name.
func (c *Client) RevokeToken(ctx context.Context, idOrName string) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "POST", at("/v1/tokens").name(api.KindToken, idOrName).then("/revoke"), nil, &t)
	return &t, err
}

// RevokeTokenCascade revokes a token by id or active name and every token
// it created, transitively; the answer lists the ids revoked.
func (c *Client) RevokeTokenCascade(ctx context.Context, idOrName string) (*api.RevokeTokenResponse, error) {
	out := api.RevokeTokenResponse{Token: new(tokenward.Token)}
	err := c.do(ctx, "POST", at("/v1/tokens").name(api.KindToken, idOrName).then("/revoke"), api.RevokeTokenRequest{Cascade: true}, &out)
	return &out, err
}

// RotateKeys adds a master key version and rewraps data keys.
func (c *Client) RotateKeys(ctx context.Context) (uint32, error) {
	var out api.KeyRotation
	err := c.do(ctx, "POST", at("/v1/keys/rotate"), nil, &out)
	return out.MasterKeyID, err
}
