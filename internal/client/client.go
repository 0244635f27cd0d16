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

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Addr+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, unwrapURL(err))
		}
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, err)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &tokenward.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return tokenward.Errorf(tokenward.EINTERNAL, "server answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// unwrapURL drops the request URL from a transport error (it holds no
// token, but the inner error reads better).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func esc(s string) string { return url.PathEscape(s) }

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, "GET", "/v1/health", nil, nil)
}

// CreateProject creates a project with environments.
func (c *Client) CreateProject(ctx context.Context, name string, envs []string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "POST", "/v1/projects", map[string]any{"name": name, "environments": nonNil(envs)}, &p)
	return &p, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Projects lists projects.
func (c *Client) Projects(ctx context.Context) ([]*tokenward.Project, error) {
	var out struct{ Projects []*tokenward.Project }
	err := c.do(ctx, "GET", "/v1/projects", nil, &out)
	return out.Projects, err
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, name string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "GET", "/v1/projects/"+esc(name), nil, &p)
	return &p, err
}

// CreateEnv adds an environment to a project.
func (c *Client) CreateEnv(ctx context.Context, project, env string) (*tokenward.Project, error) {
	var p tokenward.Project
	err := c.do(ctx, "POST", "/v1/projects/"+esc(project)+"/envs", map[string]string{"name": env}, &p)
	return &p, err
}

// SetSecretInput is a new secret version with optional metadata.
type SetSecretInput struct {
	Value       *string    `json:"value"`
	Owner       *string    `json:"owner,omitempty"`
	Description *string    `json:"description,omitempty"`
	Tags        *[]string  `json:"tags,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	IfVersion   *int       `json:"if_version,omitempty"`
}

func secretPath(project, env, name string) string {
	return "/v1/secrets/" + esc(project) + "/" + esc(env) + "/" + esc(name)
}

// SetSecret writes a new version of a secret.
func (c *Client) SetSecret(ctx context.Context, project, env, name string, in SetSecretInput) (*tokenward.Secret, error) {
	var s tokenward.Secret
	err := c.do(ctx, "PUT", secretPath(project, env, name), in, &s)
	return &s, err
}

// SecretValue is a secret's metadata with one version's value.
type SecretValue struct {
	tokenward.Secret
	Value        string `json:"value"`
	ValueVersion int    `json:"value_version"`
}

// GetSecret reads a version of a secret (0: current).
func (c *Client) GetSecret(ctx context.Context, project, env, name string, version int) (*SecretValue, error) {
	path := secretPath(project, env, name)
	if version > 0 {
		path += "?version=" + strconv.Itoa(version)
	}
	var s SecretValue
	err := c.do(ctx, "GET", path, nil, &s)
	return &s, err
}

// Secrets lists the secrets of an environment, without values.
func (c *Client) Secrets(ctx context.Context, project, env string) ([]*tokenward.Secret, error) {
	var out struct{ Secrets []*tokenward.Secret }
	err := c.do(ctx, "GET", "/v1/secrets/"+esc(project)+"/"+esc(env), nil, &out)
	return out.Secrets, err
}

// EnvValues is every readable secret of an environment with its value.
type EnvValues struct {
	Project string              `json:"project"`
	Env     string              `json:"environment"`
	Values  map[string]string   `json:"values"`
	Secrets []*tokenward.Secret `json:"secrets"`
}

// EnvValues fetches every secret of project/env the token may read, with
// current values, in one request.
func (c *Client) EnvValues(ctx context.Context, project, env string) (*EnvValues, error) {
	var out EnvValues
	err := c.do(ctx, "GET", "/v1/values/"+esc(project)+"/"+esc(env), nil, &out)
	return &out, err
}

// SecretHistory lists a secret's versions.
func (c *Client) SecretHistory(ctx context.Context, project, env, name string) ([]*tokenward.SecretVersion, error) {
	var out struct{ Versions []*tokenward.SecretVersion }
	err := c.do(ctx, "GET", secretPath(project, env, name)+"/versions", nil, &out)
	return out.Versions, err
}

// RollbackSecret writes a new version with the value of version to.
func (c *Client) RollbackSecret(ctx context.Context, project, env, name string, to int) (*tokenward.Secret, error) {
	var s tokenward.Secret
	err := c.do(ctx, "POST", secretPath(project, env, name)+"/rollback", map[string]int{"to": to}, &s)
	return &s, err
}

// CreateTokenInput describes a token to mint.
type CreateTokenInput struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind,omitempty"`
	Owner  string   `json:"owner,omitempty"`
	Grants []string `json:"grants"`
	TTL    string   `json:"ttl,omitempty"`
}

// CreateToken mints a token; the returned secret is shown once.
func (c *Client) CreateToken(ctx context.Context, in CreateTokenInput) (*tokenward.Token, string, error) {
	var out struct {
		Token  *tokenward.Token `json:"token"`
		Secret string           `json:"secret"`
	}
	err := c.do(ctx, "POST", "/v1/tokens", in, &out)
	return out.Token, out.Secret, err
}

// Tokens lists the tokens the caller may manage.
func (c *Client) Tokens(ctx context.Context) ([]*tokenward.Token, error) {
	var out struct{ Tokens []*tokenward.Token }
	err := c.do(ctx, "GET", "/v1/tokens", nil, &out)
	return out.Tokens, err
}

// Token returns a token by id or active name.
func (c *Client) GetToken(ctx context.Context, idOrName string) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "GET", "/v1/tokens/"+esc(idOrName), nil, &t)
	return &t, err
}

// Self returns the caller's own token record.
func (c *Client) Self(ctx context.Context) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "GET", "/v1/tokens/self", nil, &t)
	return &t, err
}

// RevokeToken revokes a token by id or active name.
func (c *Client) RevokeToken(ctx context.Context, idOrName string) (*tokenward.Token, error) {
	var t tokenward.Token
	err := c.do(ctx, "POST", "/v1/tokens/"+esc(idOrName)+"/revoke", nil, &t)
	return &t, err
}

// RotateKeys adds a master key version and rewraps data keys.
func (c *Client) RotateKeys(ctx context.Context) (uint32, error) {
	var out struct {
		MasterKeyID uint32 `json:"master_key_id"`
	}
	err := c.do(ctx, "POST", "/v1/keys/rotate", nil, &out)
	return out.MasterKeyID, err
}
