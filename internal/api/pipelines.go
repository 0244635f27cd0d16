package api

// DuplicatesResponse is the answer of GET /v1/projects/{project}/duplicates:
// groups of secret paths with equal current values (each with a secret of
// project), and nothing about the values themselves.
type DuplicatesResponse struct {
	Project string     `json:"project"`
	Groups  [][]string `json:"groups"`
}
