package api

// The bodies of the monitoring routes carry the records of internal/monitor
// (anomalies, usage, retirement plans, archives, change events) as they are;
// the lists among them are wrapped in these objects.

// ReportLeakRequest is the body of POST /v1/tokens/report-leak.
type ReportLeakRequest struct {
	Token string `json:"token"`
}

// ReportLeakResponse is the answer of POST /v1/tokens/report-leak, the
// same whether the token was known or not.
type ReportLeakResponse struct {
	Status string `json:"status"` // "received"
}

// AnomalyList is the answer of GET /v1/anomalies. Record is
// *monitor.Record.
type AnomalyList[Record any] struct {
	Anomalies []Record `json:"anomalies"`
}

// TokenUsages is the answer of GET /v1/usage/tokens, by token id. Usage is
// monitor.TokenUsage.
type TokenUsages[Usage any] struct {
	Tokens map[string]Usage `json:"tokens"`
}

// SecretUsages is the answer of GET /v1/usage/secrets/{project}/{env}, by
// secret name. Usage is monitor.SecretUsage.
type SecretUsages[Usage any] struct {
	Secrets map[string]Usage `json:"secrets"`
}

// RetireRequest is the body of the retire routes.
type RetireRequest struct {
	Retention string `json:"retention,omitempty"` // Go duration or "30d"; default: the server's
	DryRun    bool   `json:"dry_run,omitempty"`
}

// RestoreResponse is the answer of POST
// /v1/projects/{project}/envs/{env}/restore.
type RestoreResponse struct {
	Project  string `json:"project"`
	Env      string `json:"environment"`
	Restored int    `json:"restored"` // secrets restored
}

// ArchiveList is the answer of GET /v1/archives. Archive is
// *monitor.Archive.
type ArchiveList[Archive any] struct {
	Archives []Archive `json:"archives"`
}

// StreamError is the last line of an event stream the server ends (the
// subscriber fell behind, the server stops, the token stopped being valid).
type StreamError struct {
	Error string `json:"error"`
}
