package client

import "context"

// Duplicates returns the groups of secret paths (project/env/NAME) whose
// current values are equal and that hold a secret of project, among those
// the token may read in any project.
// The server compares keyed fingerprints; no value or fingerprint is sent.
func (c *Client) Duplicates(ctx context.Context, project string) ([][]string, error) {
	var out struct {
		Groups [][]string `json:"groups"`
	}
	err := c.do(ctx, "GET", "/v1/projects/"+esc(project)+"/duplicates", nil, &out)
	return out.Groups, err
}
