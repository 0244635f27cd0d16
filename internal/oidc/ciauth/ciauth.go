// Package ciauth fetches the OIDC identity token of the CI job it runs in
// (GitHub Actions, GitLab CI, or a file), for tokenward login --oidc.
package ciauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
)

// Source is where an identity token came from.
type Source string

const (
	SourceGitHub Source = "github" // asked from the Actions runner
	SourceGitLab Source = "gitlab" // an id_tokens variable of a GitLab job
	SourceEnv    Source = "env"    // the JWT variable outside GitLab
	SourceFile   Source = "file"   // a file (--jwt-file)
)

// Defaults of a Fetcher.
const (
	DefaultAudience = "tokenward"
	DefaultJWTEnv   = "TOKENWARD_ID_TOKEN"
	DefaultTimeout  = 15 * time.Second
	// maxTokenBytes bounds an identity token and the runner's answer.
	maxTokenBytes = 64 << 10
)

// Fetcher finds the job's identity token. The zero value works with the
// defaults; New fills them in so they can be read.
type Fetcher struct {
	// Audience is asked of the GitHub runner; GitLab sets it in the job's
	// id_tokens declaration instead.
	Audience string
	// JWTEnv names the variable holding the token outside GitHub.
	JWTEnv string
	// JWTFile, when set, is read instead of detecting the CI.
	JWTFile string
	// Getenv reads the environment.
	Getenv func(string) string
	// HTTPClient asks the GitHub runner.
	HTTPClient *http.Client
}

// New returns a Fetcher with the defaults.
func New() *Fetcher {
	return &Fetcher{
		Audience:   DefaultAudience,
		JWTEnv:     DefaultJWTEnv,
		Getenv:     os.Getenv,
		HTTPClient: &http.Client{Timeout: DefaultTimeout},
	}
}

func (f *Fetcher) getenv(k string) string {
	if f.Getenv != nil {
		return f.Getenv(k)
	}
	return os.Getenv(k)
}

func (f *Fetcher) jwtEnv() string {
	if f.JWTEnv != "" {
		return f.JWTEnv
	}
	return DefaultJWTEnv
}

// Detect says where Fetch will look: a file if JWTFile is set, the GitHub
// runner in GitHub Actions, the JWTEnv variable in GitLab CI or wherever it
// is set. It fails with advice when it finds no identity token to use.
func (f *Fetcher) Detect() (Source, error) {
	switch {
	case f.JWTFile != "":
		return SourceFile, nil
	case f.getenv("GITHUB_ACTIONS") == "true":
		if f.getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" || f.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN") == "" {
			return "", tokenward.Errorf(tokenward.EINVALID, "GitHub Actions did not give this job an identity token: add `permissions: id-token: write` to the workflow or job")
		}
		return SourceGitHub, nil
	case f.getenv("GITLAB_CI") == "true":
		if f.getenv(f.jwtEnv()) == "" {
			return "", tokenward.Errorf(tokenward.EINVALID, "GitLab CI: variable %s is empty: declare `id_tokens: %s: aud: %s` in the job", f.jwtEnv(), f.jwtEnv(), DefaultAudience)
		}
		return SourceGitLab, nil
	case f.getenv(f.jwtEnv()) != "":
		return SourceEnv, nil
	}
	return "", tokenward.Errorf(tokenward.EINVALID, "no CI identity token found: not in GitHub Actions or GitLab CI, %s is unset and no --jwt-file was given", f.jwtEnv())
}

// Fetch returns the job's identity token and where it came from. Its
// errors never contain the token, nor the runner's request token.
func (f *Fetcher) Fetch(ctx context.Context) (string, Source, error) {
	src, err := f.Detect()
	if err != nil {
		return "", "", err
	}
	var tok string
	switch src {
	case SourceFile:
		tok, err = readFile(f.JWTFile)
	case SourceGitHub:
		tok, err = f.fetchGitHub(ctx)
	default:
		tok = strings.TrimSpace(f.getenv(f.jwtEnv()))
	}
	if err != nil {
		return "", "", err
	}
	if err := checkToken(tok); err != nil {
		return "", "", fmt.Errorf("%s identity token: %w", src, err)
	}
	return tok, src, nil
}

func readFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", tokenward.Errorf(tokenward.EINVALID, "identity token file: %v", errors.Unwrap(err))
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxTokenBytes+1))
	if err != nil {
		return "", tokenward.Errorf(tokenward.EINVALID, "identity token file: read failed")
	}
	if len(b) > maxTokenBytes {
		return "", tokenward.Errorf(tokenward.EINVALID, "identity token file is larger than %d bytes", maxTokenBytes)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkToken is a sanity check on the form only; the server verifies.
func checkToken(tok string) error {
	if tok == "" {
		return tokenward.Errorf(tokenward.EINVALID, "empty")
	}
	if len(tok) > maxTokenBytes {
		return tokenward.Errorf(tokenward.EINVALID, "longer than %d bytes", maxTokenBytes)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return tokenward.Errorf(tokenward.EINVALID, "holds whitespace: not a JWT")
	}
	if strings.Count(tok, ".") != 2 {
		return tokenward.Errorf(tokenward.EINVALID, "not a compact JWT")
	}
	return nil
}

// fetchGitHub asks the Actions runner for a token with our audience:
// GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=... with the request token as
// bearer; the answer is {"value": "<jwt>"}.
func (f *Fetcher) fetchGitHub(ctx context.Context) (string, error) {
	u, err := url.Parse(f.getenv("ACTIONS_ID_TOKEN_REQUEST_URL"))
	if err != nil || u.Host == "" {
		return "", tokenward.Errorf(tokenward.EINVALID, "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")
	}
	if !safeRunnerURL(u) {
		// The request token would travel in the clear.
		return "", tokenward.Errorf(tokenward.EINVALID, "ACTIONS_ID_TOKEN_REQUEST_URL must be https")
	}
	aud := f.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", tokenward.Errorf(tokenward.EINVALID, "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL")
	}
	req.Header.Set("Authorization", "bearer "+f.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
	req.Header.Set("Accept", "application/json; api-version=2.0")
	var client http.Client
	if f.HTTPClient != nil {
		client = *f.HTTPClient
	} else {
		client.Timeout = DefaultTimeout
	}
	// Go keeps the Authorization header on a redirect to the same host or a
	// subdomain whatever the scheme, so a redirect to http would send the
	// request token in the clear: hold redirects to the same rule.
	next := client.CheckRedirect
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if !safeRunnerURL(r.URL) {
			return errors.New("redirected to a URL that is not https")
		}
		if next != nil {
			return next(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error holds the URL, which holds no secret; the bearer token
		// is in a header and never in the error.
		return "", tokenward.Errorf(tokenward.EUNAVAILABLE, "asking the GitHub runner for an identity token: %v", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", tokenward.Errorf(tokenward.EUNAVAILABLE, "the GitHub runner refused an identity token: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes+1))
	if err != nil || len(body) > maxTokenBytes {
		return "", tokenward.Errorf(tokenward.EUNAVAILABLE, "the GitHub runner's answer is unreadable or too large")
	}
	var answer struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", tokenward.Errorf(tokenward.EUNAVAILABLE, "the GitHub runner's answer is not JSON with a value")
	}
	return answer.Value, nil
}

// safeRunnerURL says whether the request token may be sent to u: https, or
// plain http on a loopback host (tests).
func safeRunnerURL(u *url.URL) bool {
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
