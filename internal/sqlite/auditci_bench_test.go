package sqlite_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// jitCI is a JIT token's CI facts as the OIDC exchange records them (one
// map, shared by every entry of the token's requests).
var jitCI = map[string]string{
	"issuer":      "https://token.actions.githubusercontent.com",
	"repository":  "acme-corp/payments-service",
	"ref":         "refs/heads/main",
	"run_id":      "9876543210",
	"workflow":    "acme-corp/payments-service/.github/workflows/deploy.yml@refs/heads/main",
	"actor":       "octocat",
	"sha":         "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
	"environment": "production",
	"subject":     "repo:acme-corp/payments-service:environment:production",
}

// BenchmarkAuditAppendJIT is BenchmarkAuditAppend's normal mode for a JIT
// token's entries, which carry its CI facts: groups of one, of eight and of
// 128 (the journal ingester's under load); ns/op is per entry.
func BenchmarkAuditAppendJIT(b *testing.B) {
	for _, n := range []int{1, 8, 128} {
		b.Run("group="+strconv.Itoa(n), func(b *testing.B) {
			s := sqlite.NewAuditStore(MustOpenDB(b), sqlite.AuditSyncNormal)
			if err := s.Open(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close(); s.DB.Close() })
			batch := make([]*tokenward.AuditEntry, n)
			for i := range batch {
				batch[i] = &tokenward.AuditEntry{Time: time.Unix(1700000000, 0), RequestID: "req-0123456789abcdef", TokenID: "tok_0123456789", TokenName: "jit:deploy",
					Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed, Status: 200,
					SourceIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", CI: jitCI, PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64)}
			}
			b.ReportAllocs()
			seq := int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i += n {
				for _, e := range batch {
					seq++
					e.Seq = seq
				}
				if err := s.AppendAuditBatch(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
