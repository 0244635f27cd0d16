package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// mustAudit wires a broker over the server's own SQLite store with the
// server's default durability (as the server command does) and returns it;
// the caller sets e.api.Audit.
func mustAudit(tb testing.TB, e *env) *audit.Broker {
	tb.Helper()
	return mustAuditSync(tb, e, "normal")
}

// mustAuditSync is mustAudit with a --audit-sync mode: journal, normal or
// full.
func mustAuditSync(tb testing.TB, e *env, sync string) *audit.Broker {
	tb.Helper()
	mode := sqlite.AuditSyncNormal
	if sync == "full" {
		mode = sqlite.AuditSyncFull
	}
	db := sqlite.NewAuditStore(e.core.Store.(*sqlite.DB), mode)
	if sync == "journal" {
		db.SyncEvery = time.Second // as the server does
	}
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	key, err := audit.LoadOrCreateKey(filepath.Join(tb.TempDir(), "audit.key"))
	if err != nil {
		tb.Fatal(err)
	}
	signer, _ := audit.NewSigner(key)
	b := audit.NewBroker(db, signer)
	if sync == "journal" {
		b.Journal = &audit.Journal{Path: filepath.Join(tb.TempDir(), "audit.journal")}
	}
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
// secret with every read audited as the server does by default
// (--audit-sync journal: chained and appended to the audit journal before
// the answer, stored in SQLite in batches by the ingester) beside the same
// reads unaudited, in one run, and reports the audited/unaudited
// throughput ratio (target: >= 0.75).
func BenchmarkAuditedSecretRead(b *testing.B) {
	benchAuditedSecretRead(b, "journal")
}

// BenchmarkAuditedSecretReadSyncNormal is the same with --audit-sync
// normal: every entry committed to SQLite (WAL, fsync in the background)
// before the answer.
func BenchmarkAuditedSecretReadSyncNormal(b *testing.B) {
	benchAuditedSecretRead(b, "normal")
}

// BenchmarkAuditedSecretReadSyncFull is the same with --audit-sync full:
// every group commit fsynced before its requests are answered.
func BenchmarkAuditedSecretReadSyncFull(b *testing.B) {
	benchAuditedSecretRead(b, "full")
}

func benchAuditedSecretRead(b *testing.B, mode string) {
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
			// Rounds alternate which arm goes first, and the ratio is the
			// median of the rounds' ratios: drift and bursts of load on the
			// shared machine fall on both arms of a round alike.
			const rounds = 10
			n := max(b.N/rounds, 200)
			var plainT, auditedT time.Duration
			var p50s, p99s []time.Duration
			var ratios []float64
			var cpuA, cpuP time.Duration
			arm := func(audited bool) float64 {
				e.api.Audit = nil
				if audited {
					e.api.Audit = broker.Record
				}
				cpu0 := processCPU()
				rps, p50, p99 := load(b, c, n, newReq)
				cpu := (processCPU() - cpu0) / time.Duration(n)
				e.api.Audit = nil
				d := time.Duration(float64(n) / rps * float64(time.Second))
				if audited {
					auditedT, cpuA = auditedT+d, cpuA+cpu
					p50s, p99s = append(p50s, p50), append(p99s, p99)
				} else {
					plainT, cpuP = plainT+d, cpuP+cpu
				}
				return rps
			}
			for r := range rounds {
				var a, p float64
				if r%2 == 0 {
					p = arm(false)
					a = arm(true)
				} else {
					a = arm(true)
					p = arm(false)
				}
				ratios = append(ratios, a/p)
			}
			slices.Sort(p50s)
			slices.Sort(p99s)
			slices.Sort(ratios)
			total := float64(rounds * n)
			audited, plain := total/auditedT.Seconds(), total/plainT.Seconds()
			// Process CPU per request (server and client): steadier than
			// throughput on a noisy machine.
			b.ReportMetric(float64(cpuA.Microseconds())/rounds, "audited-cpu-µs")
			b.ReportMetric(float64(cpuP.Microseconds())/rounds, "unaudited-cpu-µs")
			b.ReportMetric(audited, "audited-req/s")
			b.ReportMetric(plain, "unaudited-req/s")
			b.ReportMetric(float64(p50s[rounds/2].Microseconds()), "audited-p50-µs")
			b.ReportMetric(float64(p99s[rounds/2].Microseconds()), "audited-p99-µs")
			b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "ratio")
		})
	}
}
