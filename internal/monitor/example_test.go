package monitor_test

import (
	"fmt"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/monitor"
)

func ExampleMonitor_Observe() {
	m, _ := monitor.New(monitor.Config{})
	revokedAt := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	m.SetToken(&tokenward.Token{ID: "tok_old", Name: "legacy", Kind: tokenward.TokenService, RevokedAt: revokedAt})

	for _, a := range m.Observe(&tokenward.AuditEntry{
		Seq: 41, Time: revokedAt.Add(time.Hour), RequestID: "req-41", TokenID: "tok_old",
		Action: "secret.read", Resource: "payments/prod/DB_URL", Outcome: tokenward.OutcomeDenied, SourceIP: "203.0.113.9",
	}) {
		fmt.Println(a.Rule, a.Severity, a.Evidence[0].Seq)
	}
	// Output: revoked_token_use critical 41
}
