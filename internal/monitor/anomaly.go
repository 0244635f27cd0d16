// Package monitor watches the audit stream for suspicious token use: it keeps
// small per-token baselines, fires anomaly rules, sends signed alerts and
// change events, and builds the lifecycle-hygiene report.
package monitor

import (
	"time"

	"github.com/tokenward/tokenward"
)

// RuleID names an anomaly rule. Rule ids are stable: they appear in alerts,
// in the anomalies table and as the only label of the anomaly metric.
type RuleID string

// The anomaly rules. See docs/monitoring.md for the exact definitions.
const (
	RuleNewNetwork      RuleID = "new_network"       // a stable token seen from a new /24 or /48
	RuleRateBurst       RuleID = "rate_burst"        // per-minute rate far above the token's baseline
	RuleNewSecretRead   RuleID = "new_secret_read"   // a learned token reads a secret it never read
	RuleJITAfterJob     RuleID = "jit_after_job"     // a JIT token used after its job window
	RuleJITSecondSource RuleID = "jit_second_source" // a JIT token used from a second network
	RuleDeniedBurst     RuleID = "denied_burst"      // many denied requests by one token
	RuleDeniedBurstIP   RuleID = "denied_burst_ip"   // many denied requests from one source IP
	RuleRevokedUse      RuleID = "revoked_token_use" // any use of a revoked token
	RuleExpiredUse      RuleID = "expired_token_use" // any use of an expired token
	RuleLeakReported    RuleID = "leak_reported"     // a token reported as leaked
	RuleLeaseBurst      RuleID = "lease_burst"       // many dynamic-source leases by one token
)

// Rules lists every rule, in a fixed order (for metrics registration).
var Rules = []RuleID{
	RuleNewNetwork, RuleRateBurst, RuleNewSecretRead, RuleJITAfterJob, RuleJITSecondSource,
	RuleDeniedBurst, RuleDeniedBurstIP, RuleRevokedUse, RuleExpiredUse, RuleLeakReported,
	RuleLeaseBurst,
}

// numRules sizes the per-rule arrays; a test checks it equals len(Rules).
const numRules = 11

func ruleIndex(r RuleID) int {
	for i, x := range Rules {
		if x == r {
			return i
		}
	}
	return -1
}

// Severity ranks anomalies.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

var ruleSeverity = map[RuleID]Severity{
	RuleNewNetwork:      SeverityMedium,
	RuleRateBurst:       SeverityMedium,
	RuleNewSecretRead:   SeverityMedium,
	RuleJITAfterJob:     SeverityHigh,
	RuleJITSecondSource: SeverityHigh,
	RuleDeniedBurst:     SeverityHigh,
	RuleDeniedBurstIP:   SeverityHigh,
	RuleRevokedUse:      SeverityCritical,
	RuleExpiredUse:      SeverityHigh,
	RuleLeakReported:    SeverityCritical,
	RuleLeaseBurst:      SeverityHigh,
}

// Action is what the policy says to do when a rule fires.
type Action string

// Policy actions.
const (
	ActionAlert   Action = "alert"   // alert only
	ActionSuspend Action = "suspend" // alert, and the integrator revokes the token at once
)

// DefaultPolicy is the action per rule when Config.Policy does not name it.
// Suspension is the default only where a legitimate cause is implausible.
var DefaultPolicy = map[RuleID]Action{
	RuleJITSecondSource: ActionSuspend,
	RuleLeakReported:    ActionSuspend,
}

// Evidence points at one audit entry behind an anomaly.
type Evidence struct {
	Seq       int64  `json:"seq"`
	RequestID string `json:"request_id,omitempty"`
}

// Anomaly is one rule firing. It never holds a secret value or a token; it
// may name a secret (as project/env/name) in Resource and Explanation.
type Anomaly struct {
	Rule        RuleID     `json:"rule"`
	Severity    Severity   `json:"severity"`
	Time        time.Time  `json:"time"`
	TokenID     string     `json:"token_id,omitempty"`
	TokenName   string     `json:"token_name,omitempty"`
	SourceIP    string     `json:"source_ip,omitempty"`
	Resource    string     `json:"resource,omitempty"`
	Explanation string     `json:"explanation"`
	Evidence    []Evidence `json:"evidence"`
	// Suspend asks the integrator to revoke TokenID now (policy "suspend").
	Suspend bool `json:"suspend"`
}

// String returns a one-line summary for logs and chat.
func (a *Anomaly) String() string {
	return "[" + string(a.Severity) + "] " + string(a.Rule) + ": " + a.Explanation
}

func evidenceOf(e *tokenward.AuditEntry) Evidence {
	return Evidence{Seq: e.Seq, RequestID: e.RequestID}
}
