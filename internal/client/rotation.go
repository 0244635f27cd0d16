package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/rotate"
)

func rotationPath(kind, secret string) path {
	parts := strings.Split(secret, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return path{err: errors.New("secret path: want PROJECT/ENV/NAME")}
	}
	return envPath("/v1/rotation/"+kind, parts[0], parts[1]).name(api.KindSecret, parts[2])
}

// SetRotationPolicy creates or replaces the rotation policy of
// p.Secret (project/env/NAME); `apply` of tokenward.yaml's rotation section
// calls it once per secret.
func (c *Client) SetRotationPolicy(ctx context.Context, p *api.RotationPolicy) (*api.RotationPolicy, error) {
	var out api.RotationPolicy
	err := c.do(ctx, "PUT", rotationPath("policies", p.Secret), &p.RotationSettings, &out)
	return &out, err
}

// RotationPolicy returns the policy of secret (project/env/NAME).
func (c *Client) RotationPolicy(ctx context.Context, secret string) (*api.RotationPolicy, error) {
	var out api.RotationPolicy
	err := c.do(ctx, "GET", rotationPath("policies", secret), nil, &out)
	return &out, err
}

// RotationPolicies lists the policies the token may see.
func (c *Client) RotationPolicies(ctx context.Context) ([]*api.RotationPolicy, error) {
	var out api.RotationPolicyList
	err := c.do(ctx, "GET", at("/v1/rotation/policies"), nil, &out)
	return out.Policies, err
}

// DisableRotationPolicy stops (enable=false) or resumes scheduled rotation
// of secret.
func (c *Client) DisableRotationPolicy(ctx context.Context, secret string, enable bool) (*api.RotationPolicy, error) {
	var body any
	if enable {
		body = api.DisableRotationPolicyRequest{Enable: true}
	}
	var out api.RotationPolicy
	err := c.do(ctx, "POST", rotationPath("policies", secret).then("/disable"), body, &out)
	return &out, err
}

// RotateNow rotates secret now under its policy.
func (c *Client) RotateNow(ctx context.Context, secret string) (*rotate.Rotation, error) {
	var out rotate.Rotation
	err := c.do(ctx, "POST", rotationPath("rotate", secret), nil, &out)
	return &out, err
}

// BulkRotate plans (DryRun) or runs a bulk rotation and returns the plan
// or the per-secret report. A run goes on in the server's background: it
// polls the job until it ends or ctx does (the rotations go on then).
func (c *Client) BulkRotate(ctx context.Context, in api.BulkRotateRequest) ([]rotate.BulkItem, error) {
	if in.DryRun {
		var plan api.BulkRotateResponse[rotate.BulkItem]
		err := c.do(ctx, "POST", at("/v1/rotation/bulk"), &in, &plan)
		return plan.Items, err
	}
	var job api.BulkJob[rotate.BulkItem]
	if err := c.do(ctx, "POST", at("/v1/rotation/bulk"), &in, &job); err != nil {
		return nil, err
	}
	for job.Status == api.BulkRunning {
		if err := c.do(ctx, "GET", at("/v1/rotation/bulk").name(api.KindBulkRotation, job.ID).then("?wait=25s"), nil, &job); err != nil {
			return nil, fmt.Errorf("bulk rotation %s (it goes on on the server): %w", job.ID, err)
		}
	}
	switch job.Status {
	case api.BulkFailed:
		return job.Items, fmt.Errorf("bulk rotation %s failed: %s", job.ID, job.Error)
	case api.BulkAbandoned:
		return job.Items, fmt.Errorf("bulk rotation %s was abandoned: the server running it stopped; the leader resumes the rotations it started (see rotate status)", job.ID)
	}
	return job.Items, nil
}

// RotationStatus returns in-flight rotations and recent failures.
func (c *Client) RotationStatus(ctx context.Context) (*api.RotationStatusResponse[*rotate.Rotation], error) {
	var out api.RotationStatusResponse[*rotate.Rotation]
	err := c.do(ctx, "GET", at("/v1/rotation/status"), nil, &out)
	return &out, err
}

// RotationHistory lists the rotations of secret, newest first.
func (c *Client) RotationHistory(ctx context.Context, secret string) ([]*rotate.Rotation, error) {
	var out api.RotationHistory[*rotate.Rotation]
	err := c.do(ctx, "GET", rotationPath("history", secret), nil, &out)
	return out.Rotations, err
}

// RollbackRotation makes PREVIOUS current again within grace.
func (c *Client) RollbackRotation(ctx context.Context, secret string) (*rotate.Rotation, error) {
	var out rotate.Rotation
	err := c.do(ctx, "POST", rotationPath("rollback", secret), nil, &out)
	return &out, err
}
