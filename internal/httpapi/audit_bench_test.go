package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// mustAudit wires a broker over the server's own SQLite store with the
// server's default durability (as the server command does) and returns it;
// the caller sets e.api.Audit.
func mustAudit(tb testing.TB, e *env) *audit.Broker {
	tb.Helper()
	return mustAuditSync(tb, e, sqlite.AuditSyncNormal)
}

func mustAuditSync(tb testing.TB, e *env, mode sqlite.AuditSync) *audit.Broker {
	tb.Helper()
	db := sqlite.NewAuditStore(e.core.Store.(*sqlite.DB), mode)
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	key, err := audit.LoadOrCreateKey(filepath.Join(tb.TempDir(), "audit.key"))
	if err != nil {
		tb.Fatal(err)
	}
	signer, _ := audit.NewSigner(key)
	b := audit.NewBroker(db, signer)
	if err := b.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		b.Close(context.Background())
		db.Close()
	})
	return b
}

// BenchmarkAuditedSecretRead measures authenticated reads of a 100-byte
// secret with every read audited (chained and committed to SQLite before
// the answer; --audit-sync normal, the default: WAL commit, fsync in the
// background) beside the same reads unaudited, in one run, and reports the
// audited/unaudited throughput ratio (target: >= 0.75).
func BenchmarkAuditedSecretRead(b *testing.B) {
	benchAuditedSecretRead(b, sqlite.AuditSyncNormal)
}

// BenchmarkAuditedSecretReadSyncFull is the same with --audit-sync full:
// every group commit fsynced before its requests are answered.
func BenchmarkAuditedSecretReadSyncFull(b *testing.B) {
	benchAuditedSecretRead(b, sqlite.AuditSyncFull)
}

func benchAuditedSecretRead(b *testing.B, mode sqlite.AuditSync) {
	e := MustServe(b)
	e.mustDo(b, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(b, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": strings.Repeat("v", 100)}, 200)
	_, reader := e.mustToken(b, e.admin, "reader", "", "read:payments/prod/*")
	broker := mustAuditSync(b, e, mode)
	newReq := func() *http.Request {
		r, _ := http.NewRequest("GET", e.srv.URL+"/v1/secrets/payments/prod/KEY", nil)
		r.Header.Set("Authorization", "Bearer "+reader)
		return r
	}
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			n := max(b.N, 500)
			e.api.Audit = nil
			plain, _, _ := load(b, c, n, newReq)
			e.api.Audit = broker.Record
			audited, p50, p99 := load(b, c, n, newReq)
			e.api.Audit = nil
			b.ReportMetric(audited, "audited-req/s")
			b.ReportMetric(plain, "unaudited-req/s")
			b.ReportMetric(float64(p50.Microseconds()), "audited-p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "audited-p99-µs")
			b.ReportMetric(audited/plain, "ratio")
		})
	}
}
