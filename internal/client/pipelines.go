package client

import (
	"context"

	"github.com/tokenward/tokenward/internal/api"
)

// Duplicates returns the groups of secret paths (project/env/NAME) whose
// current values are equal and that hold a secret of project, among those
// the token may read in any project.
// The server compares keyed fingerprints; no value or fingerprint is sent.
func (c *Client) Duplicates(ctx context.Context, project string) ([][]string, error) {
	var out api.DuplicatesResponse
	err := c.do(ctx, "GET", projectPath("/v1/projects", project).then("/duplicates"), nil, &out)
	return out.Groups, err
}
