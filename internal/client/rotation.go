package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tokenward/tokenward/internal/rotate"
)

// RotationPolicy is a rotation policy as the API takes and shows it:
// durations in the policy form (30d, 2w, 12h, 90m). Config never holds a
// secret; it names stored secrets by path (dsn_secret, key_secret).
type RotationPolicy struct {
	Secret   string            `json:"secret,omitempty"`
	Every    string            `json:"every,omitempty"`
	Cron     string            `json:"cron,omitempty"`
	Jitter   string            `json:"jitter,omitempty"`
	Grace    string            `json:"grace,omitempty"`
	Rotator  string            `json:"rotator"`
	Config   map[string]string `json:"config,omitempty"`
	Disabled bool              `json:"disabled,omitempty"`
	LastAt   time.Time         `json:"last_at,omitzero"`
	NextAt   time.Time         `json:"next_at,omitzero"`
}

func rotationPath(kind, secret string) (string, error) {
	parts := strings.Split(secret, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", errors.New("secret path: want PROJECT/ENV/NAME")
	}
	return "/v1/rotation/" + kind + "/" + esc(parts[0]) + "/" + esc(parts[1]) + "/" + esc(parts[2]), nil
}

// SetRotationPolicy creates or replaces the rotation policy of
// p.Secret (project/env/NAME); `apply` of tokenward.yaml's rotation section
// calls it once per secret.
func (c *Client) SetRotationPolicy(ctx context.Context, p *RotationPolicy) (*RotationPolicy, error) {
	path, err := rotationPath("policies", p.Secret)
	if err != nil {
		return nil, err
	}
	in := *p
	in.Secret, in.LastAt, in.NextAt = "", time.Time{}, time.Time{}
	var out RotationPolicy
	err = c.do(ctx, "PUT", path, &in, &out)
	return &out, err
}

// RotationPolicy returns the policy of secret (project/env/NAME).
func (c *Client) RotationPolicy(ctx context.Context, secret string) (*RotationPolicy, error) {
	path, err := rotationPath("policies", secret)
	if err != nil {
		return nil, err
	}
	var out RotationPolicy
	err = c.do(ctx, "GET", path, nil, &out)
	return &out, err
}

// RotationPolicies lists the policies the token may see.
func (c *Client) RotationPolicies(ctx context.Context) ([]*RotationPolicy, error) {
	var out struct{ Policies []*RotationPolicy }
	err := c.do(ctx, "GET", "/v1/rotation/policies", nil, &out)
	return out.Policies, err
}

// DisableRotationPolicy stops (enable=false) or resumes scheduled rotation
// of secret.
func (c *Client) DisableRotationPolicy(ctx context.Context, secret string, enable bool) (*RotationPolicy, error) {
	path, err := rotationPath("policies", secret)
	if err != nil {
		return nil, err
	}
	var body any
	if enable {
		body = map[string]bool{"enable": true}
	}
	var out RotationPolicy
	err = c.do(ctx, "POST", path+"/disable", body, &out)
	return &out, err
}

// RotateNow rotates secret now under its policy.
func (c *Client) RotateNow(ctx context.Context, secret string) (*rotate.Rotation, error) {
	path, err := rotationPath("rotate", secret)
	if err != nil {
		return nil, err
	}
	var out rotate.Rotation
	err = c.do(ctx, "POST", path, nil, &out)
	return &out, err
}

// BulkRotateInput selects secrets by exactly one of All, Owner, Tag, Scope.
type BulkRotateInput struct {
	All         bool   `json:"all,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Tag         string `json:"tag,omitempty"`
	Scope       string `json:"scope,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	Concurrency int    `json:"concurrency,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// BulkRotate plans (DryRun) or runs a bulk rotation and returns the plan
// or the per-secret report. A run goes on in the server's background: it
// polls the job until it ends or ctx does (the rotations go on then).
func (c *Client) BulkRotate(ctx context.Context, in BulkRotateInput) ([]rotate.BulkItem, error) {
	var out struct {
		ID     string
		Status string
		Error  string
		Items  []rotate.BulkItem
	}
	if err := c.do(ctx, "POST", "/v1/rotation/bulk", &in, &out); err != nil {
		return nil, err
	}
	if in.DryRun {
		return out.Items, nil
	}
	for out.Status == "running" {
		if err := c.do(ctx, "GET", "/v1/rotation/bulk/"+url.PathEscape(out.ID)+"?wait=25s", nil, &out); err != nil {
			return nil, fmt.Errorf("bulk rotation %s (it goes on on the server): %w", out.ID, err)
		}
	}
	if out.Status == "failed" {
		return out.Items, fmt.Errorf("bulk rotation %s failed: %s", out.ID, out.Error)
	}
	return out.Items, nil
}

// RotationStatus is the in-flight rotations and recent failures.
type RotationStatus struct {
	InFlight []*rotate.Rotation `json:"in_flight"`
	Failed   []*rotate.Rotation `json:"failed"`
}

// RotationStatus returns in-flight rotations and recent failures.
func (c *Client) RotationStatus(ctx context.Context) (*RotationStatus, error) {
	var out RotationStatus
	err := c.do(ctx, "GET", "/v1/rotation/status", nil, &out)
	return &out, err
}

// RotationHistory lists the rotations of secret, newest first.
func (c *Client) RotationHistory(ctx context.Context, secret string) ([]*rotate.Rotation, error) {
	path, err := rotationPath("history", secret)
	if err != nil {
		return nil, err
	}
	var out struct{ Rotations []*rotate.Rotation }
	err = c.do(ctx, "GET", path, nil, &out)
	return out.Rotations, err
}

// RollbackRotation makes PREVIOUS current again within grace.
func (c *Client) RollbackRotation(ctx context.Context, secret string) (*rotate.Rotation, error) {
	path, err := rotationPath("rollback", secret)
	if err != nil {
		return nil, err
	}
	var out rotate.Rotation
	err = c.do(ctx, "POST", path, nil, &out)
	return &out, err
}

// GetSecretLabel reads the version of a secret carrying label: "current",
// "previous" or "pending".
func (c *Client) GetSecretLabel(ctx context.Context, project, env, name, label string) (*SecretValue, error) {
	var s SecretValue
	err := c.do(ctx, "GET", secretPath(project, env, name)+"?version="+url.QueryEscape(label), nil, &s)
	return &s, err
}
