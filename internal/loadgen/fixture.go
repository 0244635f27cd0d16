package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/client"
)

// EnvSize is how many secrets the env operation fetches: a CI job's
// environment.
const EnvSize = 20

// valueSize is the size of every value the fixture writes.
const valueSize = 100

// Fixture is what the operations act on, made through the API under a
// unique prefix so a run on a shared server touches nothing else: project
// PREFIX with environment prod (secret K, read), ci (EnvSize secrets,
// fetched whole) and w (written, one secret per worker); a service token
// PREFIX-load reading and writing PREFIX/*/*, which every operation but
// oidc uses; and, for oidc, an in-process issuer and binding PREFIX.
type Fixture struct {
	Prefix string

	admin      *client.Client
	load       string // the load token's secret: sent, never printed
	loadID     string
	issuer     *Issuer
	binding    string
	runID      string // makes the jti of identity tokens unique across runs
	tokenGrant []string
}

// Setup makes the fixture the operations of mix need, as admin (a token
// that may create projects). On failure it removes what it made.
func Setup(ctx context.Context, admin *client.Client, mix Mix) (f *Fixture, err error) {
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	f = &Fixture{Prefix: "bench-" + hex.EncodeToString(id), admin: admin, runID: hex.EncodeToString(id)}
	f.tokenGrant = []string{"read:" + f.Prefix + "/prod/*"}
	defer func() {
		if err != nil {
			f.Cleanup(context.WithoutCancel(ctx))
		}
	}()
	if _, err := admin.CreateProject(ctx, f.Prefix, []string{"prod", "ci", "w"}); err != nil {
		return f, fmt.Errorf("creating project %s: %w", f.Prefix, err)
	}
	if err := f.set(ctx, "prod", "K", 0); err != nil {
		return f, err
	}
	for i := range EnvSize {
		if err := f.set(ctx, "ci", fmt.Sprintf("S%02d", i), i); err != nil {
			return f, err
		}
	}
	tok, secret, err := admin.CreateToken(ctx, api.CreateTokenRequest{
		Name:   f.Prefix + "-load",
		Grants: []string{"read:" + f.Prefix + "/*/*", "write:" + f.Prefix + "/*/*"},
		TTL:    "24h",
	})
	if err != nil {
		return f, fmt.Errorf("creating the load token: %w", err)
	}
	f.load, f.loadID = secret, tok.ID
	if mix.Has(OpOIDC) {
		if f.issuer, err = StartIssuer(); err != nil {
			return f, fmt.Errorf("starting the OIDC issuer: %w", err)
		}
		err = admin.CreateBinding(ctx, api.CreateBindingRequest{
			Name:      f.Prefix,
			Issuer:    f.issuer.URL,
			Audiences: []string{"tokenward"},
			Claims:    []api.ClaimCondition{{Claim: "repository", Op: "exact", Values: []string{f.Prefix + "/ci"}}},
			Grants:    f.tokenGrant,
			TTL:       "5m",
		})
		if err != nil {
			return f, fmt.Errorf("creating binding %s: %w", f.Prefix, err)
		}
		f.binding = f.Prefix
	}
	return f, nil
}

func (f *Fixture) set(ctx context.Context, env, name string, i int) error {
	v := value(i)
	if _, err := f.admin.SetSecret(ctx, f.Prefix, env, name, api.PutSecretRequest{Value: &v}); err != nil {
		return fmt.Errorf("writing %s/%s/%s: %w", f.Prefix, env, name, err)
	}
	return nil
}

// value is a valueSize-byte value; i varies it.
func value(i int) string {
	return string(bytes.Repeat([]byte{byte('a' + i%26)}, valueSize))
}

// Cleanup removes the fixture: the binding, the load token, and the
// project's secrets: the project is retired (docs/monitoring.md), which
// archives its secrets (restorable for a day, then purged) and revokes
// every token the token and oidc operations minted. The empty project
// stays: there is no project delete. It tries every step and returns the
// errors together.
func (f *Fixture) Cleanup(ctx context.Context) error {
	var errs []error
	if f.issuer != nil {
		errs = append(errs, f.issuer.Close())
	}
	if f.binding != "" {
		if _, err := f.admin.DeleteBinding(ctx, f.binding); err != nil {
			errs = append(errs, fmt.Errorf("deleting binding %s: %w", f.binding, err))
		}
	}
	if f.loadID != "" {
		if _, err := f.admin.RevokeToken(ctx, f.loadID); err != nil {
			errs = append(errs, fmt.Errorf("revoking the load token %s: %w", f.loadID, err))
		}
	}
	if _, err := f.admin.Retire(ctx, f.Prefix, "", "24h", false); err != nil && tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		errs = append(errs, fmt.Errorf("retiring project %s: %w", f.Prefix, err))
	}
	return errors.Join(errs...)
}

// Builders returns a Builder for every operation of mix, worker w sending
// to targets[w % len(targets)] (base URLs such as http://127.0.0.1:8750).
func (f *Fixture) Builders(mix Mix, targets []string) map[Op]Builder {
	base := func(w int) string { return targets[w%len(targets)] }
	secret := "/v1/secrets/" + f.Prefix + "/prod/K"
	env := "/v1/values/" + f.Prefix + "/ci"
	out := map[Op]Builder{
		OpRead: func(w int, _ uint64) (*http.Request, error) {
			return f.request("GET", base(w)+secret, nil)
		},
		OpEnv: func(w int, _ uint64) (*http.Request, error) {
			return f.request("GET", base(w)+env, nil)
		},
		// One secret per worker: writers of one secret would queue on it
		// and retry lost races, which measures contention, not writes.
		OpWrite: func(w int, seq uint64) (*http.Request, error) {
			body := `{"value":"` + value(int(seq)) + `"}` // #nosec G115 -- seq counts requests of one run; only used to vary a value
			return f.request("PUT", base(w)+"/v1/secrets/"+f.Prefix+"/w/W"+strconv.Itoa(w), []byte(body))
		},
		OpToken: func(w int, seq uint64) (*http.Request, error) {
			body, err := json.Marshal(api.CreateTokenRequest{
				Name:   fmt.Sprintf("%s-t%d-%d", f.Prefix, w, seq),
				Grants: f.tokenGrant,
				TTL:    "10m",
			})
			if err != nil {
				return nil, err
			}
			return f.request("POST", base(w)+"/v1/tokens", body)
		},
	}
	if f.issuer != nil {
		out[OpOIDC] = func(w int, seq uint64) (*http.Request, error) {
			now := time.Now()
			jwt, err := f.issuer.Sign(map[string]any{
				"iss":        f.issuer.URL,
				"aud":        "tokenward",
				"sub":        "repo:" + f.Prefix + "/ci:ref:refs/heads/main",
				"jti":        fmt.Sprintf("%s-%d-%d", f.runID, w, seq),
				"iat":        now.Unix(),
				"nbf":        now.Unix(),
				"exp":        now.Add(5 * time.Minute).Unix(),
				"repository": f.Prefix + "/ci",
			})
			if err != nil {
				return nil, err
			}
			body, err := json.Marshal(api.OIDCLoginRequest{Binding: f.binding, JWT: jwt}) // #nosec G117 -- the benchmark's own test JWT, sent to the login route it measures
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequest("POST", base(w)+"/v1/auth/oidc/login", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			return req, nil // public: no bearer token
		}
	}
	for op := range out {
		if !mix.Has(op) {
			delete(out, op)
		}
	}
	return out
}

func (f *Fixture) request(method, u string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("bad request URL " + strconv.Quote(redactURL(u)))
	}
	req.Header.Set("Authorization", "Bearer "+f.load)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// redactURL drops user information from u for an error message.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable)"
	}
	p.User = nil
	return p.String()
}
