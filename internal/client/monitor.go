package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Anomalies lists anomalies, newest first: the open ones, or all.
func (c *Client) Anomalies(ctx context.Context, all bool, limit int) ([]*monitor.Record, error) {
	query := "?all=" + strconv.FormatBool(all)
	if limit > 0 {
		query += "&limit=" + strconv.Itoa(limit)
	}
	var out api.AnomalyList[*monitor.Record]
	err := c.do(ctx, "GET", at("/v1/anomalies"+query), nil, &out)
	return out.Anomalies, err
}

// AckAnomaly acknowledges an anomaly.
func (c *Client) AckAnomaly(ctx context.Context, id string) (*monitor.Record, error) {
	var out monitor.Record
	err := c.do(ctx, "POST", at("/v1/anomalies").name(api.KindAnomaly, id).then("/ack"), nil, &out)
	return &out, err
}

// Report returns the hygiene report.
func (c *Client) Report(ctx context.Context) (*monitor.Report, error) {
	var out monitor.Report
	err := c.do(ctx, "GET", at("/v1/report"), nil, &out)
	return &out, err
}

// ReportLeak reports a leaked token; the server answers the same whether
// it knew the token or not.
func (c *Client) ReportLeak(ctx context.Context, token string) error {
	return c.do(ctx, "POST", at("/v1/tokens/report-leak"), api.ReportLeakRequest{Token: token}, nil)
}

// TokenUsage returns the usage of the tokens the caller may manage, by id.
func (c *Client) TokenUsage(ctx context.Context) (map[string]monitor.TokenUsage, error) {
	var out api.TokenUsages[monitor.TokenUsage]
	err := c.do(ctx, "GET", at("/v1/usage/tokens"), nil, &out)
	return out.Tokens, err
}

// SecretUsage returns the reads of the secrets of project/env, by name.
func (c *Client) SecretUsage(ctx context.Context, project, env string) (map[string]monitor.SecretUsage, error) {
	var out api.SecretUsages[monitor.SecretUsage]
	err := c.do(ctx, "GET", envPath("/v1/usage/secrets", project, env), nil, &out)
	return out.Secrets, err
}

// Retire retires project/env (env "": the whole project), or only plans it
// with dryRun. retention is "30d" or a Go duration; "" is the server's.
func (c *Client) Retire(ctx context.Context, project, env, retention string, dryRun bool) (*monitor.RetirePlan, error) {
	p := projectPath("/v1/projects", project)
	if env != "" {
		p = p.then("/envs").name(api.KindEnv, env)
	}
	var out monitor.RetirePlan
	err := c.do(ctx, "POST", p.then("/retire"), api.RetireRequest{Retention: retention, DryRun: dryRun}, &out)
	return &out, err
}

// RestoreEnv restores an archived environment's secrets and returns how
// many.
func (c *Client) RestoreEnv(ctx context.Context, project, env string) (int, error) {
	var out api.RestoreResponse
	err := c.do(ctx, "POST", projectPath("/v1/projects", project).then("/envs").name(api.KindEnv, env).then("/restore"), nil, &out)
	return out.Restored, err
}

// Archives lists archived environments.
func (c *Client) Archives(ctx context.Context) ([]*monitor.Archive, error) {
	var out api.ArchiveList[*monitor.Archive]
	err := c.do(ctx, "GET", at("/v1/archives"), nil, &out)
	return out.Archives, err
}

// StreamEvents calls fn with each change event the server streams until ctx
// ends, fn returns an error, or the server ends the stream (its reason is
// returned as an error).
func (c *Client) StreamEvents(ctx context.Context, fn func(monitor.Event) error) error {
	resp, err := c.send(ctx, c.streamClient(), "GET", at("/v1/events/stream"), nil)
	if err != nil {
		if errors.Is(err, ErrUnreachable) && ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue // heartbeat
		}
		var end api.StreamError
		if json.Unmarshal(line, &end) == nil && end.Error != "" {
			return fmt.Errorf("%w: %s", ErrStreamEnded, end.Error)
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
