package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Anomalies lists anomalies, newest first: the open ones, or all.
func (c *Client) Anomalies(ctx context.Context, all bool, limit int) ([]*monitor.Record, error) {
	path := "/v1/anomalies?all=" + strconv.FormatBool(all)
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	var out struct {
		Anomalies []*monitor.Record `json:"anomalies"`
	}
	err := c.do(ctx, "GET", path, nil, &out)
	return out.Anomalies, err
}

// AckAnomaly acknowledges an anomaly.
func (c *Client) AckAnomaly(ctx context.Context, id string) (*monitor.Record, error) {
	var out monitor.Record
	err := c.do(ctx, "POST", "/v1/anomalies/"+esc(id)+"/ack", nil, &out)
	return &out, err
}

// Report returns the hygiene report.
func (c *Client) Report(ctx context.Context) (*monitor.Report, error) {
	var out monitor.Report
	err := c.do(ctx, "GET", "/v1/report", nil, &out)
	return &out, err
}

// ReportLeak reports a leaked token; the server answers the same whether
// it knew the token or not.
func (c *Client) ReportLeak(ctx context.Context, token string) error {
	return c.do(ctx, "POST", "/v1/tokens/report-leak", map[string]string{"token": token}, nil)
}

// TokenUsage returns the usage of the tokens the caller may manage, by id.
func (c *Client) TokenUsage(ctx context.Context) (map[string]monitor.TokenUsage, error) {
	var out struct {
		Tokens map[string]monitor.TokenUsage `json:"tokens"`
	}
	err := c.do(ctx, "GET", "/v1/usage/tokens", nil, &out)
	return out.Tokens, err
}

// SecretUsage returns the reads of the secrets of project/env, by name.
func (c *Client) SecretUsage(ctx context.Context, project, env string) (map[string]monitor.SecretUsage, error) {
	var out struct {
		Secrets map[string]monitor.SecretUsage `json:"secrets"`
	}
	err := c.do(ctx, "GET", "/v1/usage/secrets/"+esc(project)+"/"+esc(env), nil, &out)
	return out.Secrets, err
}

// Retire retires project/env (env "": the whole project), or only plans it
// with dryRun. retention is "30d" or a Go duration; "" is the server's.
func (c *Client) Retire(ctx context.Context, project, env, retention string, dryRun bool) (*monitor.RetirePlan, error) {
	path := "/v1/projects/" + esc(project) + "/retire"
	if env != "" {
		path = "/v1/projects/" + esc(project) + "/envs/" + esc(env) + "/retire"
	}
	var out monitor.RetirePlan
	err := c.do(ctx, "POST", path, map[string]any{"retention": retention, "dry_run": dryRun}, &out)
	return &out, err
}

// RestoreEnv restores an archived environment's secrets and returns how
// many.
func (c *Client) RestoreEnv(ctx context.Context, project, env string) (int, error) {
	var out struct {
		Restored int `json:"restored"`
	}
	err := c.do(ctx, "POST", "/v1/projects/"+esc(project)+"/envs/"+esc(env)+"/restore", nil, &out)
	return out.Restored, err
}

// Archives lists archived environments.
func (c *Client) Archives(ctx context.Context) ([]*monitor.Archive, error) {
	var out struct {
		Archives []*monitor.Archive `json:"archives"`
	}
	err := c.do(ctx, "GET", "/v1/archives", nil, &out)
	return out.Archives, err
}

// StreamEvents calls fn with each change event the server streams until ctx
// ends, fn returns an error, or the server ends the stream (its reason is
// returned as an error).
func (c *Client) StreamEvents(ctx context.Context, fn func(monitor.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Addr+"/v1/events/stream", nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	hc := *c.httpClient()
	hc.Timeout = 0 // a stream has no overall deadline; ctx ends it
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &tokenward.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return tokenward.Errorf(tokenward.EINTERNAL, "server answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue // heartbeat
		}
		var probe struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Error != "" {
			return fmt.Errorf("%w: %s", ErrStreamEnded, probe.Error)
		}
		var ev monitor.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("event stream: malformed line: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, err)
	}
	return fmt.Errorf("%w by the server", ErrStreamEnded)
}

// ErrStreamEnded wraps the end of an event stream the server closed (the
// subscriber fell behind, the server stopped, the token stopped being
// valid); callers may reconnect.
var ErrStreamEnded = errors.New("event stream ended")
