package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlite"
	"github.com/tokenward/tokenward/internal/storetest"
)

// auditStoreCloser closes the audit store's syncer, then its database.
type auditStoreCloser struct{ *sqlite.AuditStore }

func (s auditStoreCloser) Close() error {
	err := s.AuditStore.Close()
	if cerr := s.DB.Close(); err == nil {
		err = cerr
	}
	return err
}

func TestAuditStoreConformance(t *testing.T) {
	for _, mode := range []sqlite.AuditSync{sqlite.AuditSyncNormal, sqlite.AuditSyncFull} {
		t.Run(mode.String(), func(t *testing.T) {
			storetest.RunAudit(t, func(t *testing.T) storetest.AuditStore {
				s := sqlite.NewAuditStore(MustOpenDB(t), mode)
				s.SyncEvery = time.Millisecond
				if err := s.Open(); err != nil {
					t.Fatal(err)
				}
				return auditStoreCloser{s}
			})
		})
	}
}

func TestParseAuditSync(t *testing.T) {
	tests := []struct {
		in      string
		want    sqlite.AuditSync
		wantErr bool
	}{
		{"normal", sqlite.AuditSyncNormal, false},
		{"full", sqlite.AuditSyncFull, false},
		{"FULL", 0, true},
		{"", 0, true},
		{"off", 0, true},
	}
	for _, tc := range tests {
		got, err := sqlite.ParseAuditSync(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("ParseAuditSync(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && tokenward.ErrorCode(err) != tokenward.EINVALID {
			t.Errorf("ParseAuditSync(%q) error code %s; want EINVALID", tc.in, tokenward.ErrorCode(err))
		}
	}
}

func TestAuditStoreOpenValidates(t *testing.T) {
	s := sqlite.NewAuditStore(MustOpenDB(t), sqlite.AuditSyncNormal)
	s.SyncEvery = 2 * time.Second
	if err := s.Open(); tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Errorf("Open with SyncEvery 2s: got %v; want EINVALID", err)
	}
}

// BenchmarkAuditAppend is one audit group commit of one entry (c=1's cost
// on the request path) per durability mode.
func BenchmarkAuditAppend(b *testing.B) {
	for _, mode := range []sqlite.AuditSync{sqlite.AuditSyncNormal, sqlite.AuditSyncFull} {
		b.Run(mode.String(), func(b *testing.B) {
			s := sqlite.NewAuditStore(MustOpenDB(b), mode)
			if err := s.Open(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close(); s.DB.Close() })
			t0 := time.Unix(1700000000, 0)
			e := &tokenward.AuditEntry{Time: t0, RequestID: "req-0123456789abcdef", TokenID: "tok_0123456789", TokenName: "reader",
				Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed, Status: 200,
				SourceIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64)}
			b.ResetTimer()
			for i := range b.N {
				e.Seq = int64(i + 1)
				if err := s.AppendAuditBatch(b.Context(), []*tokenward.AuditEntry{e}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The journal's ingester stores batches like this one: ns/op is per
	// entry.
	b.Run("batch=128", func(b *testing.B) {
		s := sqlite.NewAuditStore(MustOpenDB(b), sqlite.AuditSyncNormal)
		if err := s.Open(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close(); s.DB.Close() })
		batch := make([]*tokenward.AuditEntry, 128)
		for i := range batch {
			batch[i] = &tokenward.AuditEntry{Time: time.Unix(1700000000, 0), RequestID: "req-0123456789abcdef", TokenID: "tok_0123456789", TokenName: "reader",
				Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed, Status: 200,
				SourceIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", PrevHash: strings.Repeat("a", 64), Hash: strings.Repeat("b", 64)}
		}
		seq := int64(0)
		b.ResetTimer()
		for i := 0; i < b.N; i += len(batch) {
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

// BenchmarkAuditRecord is the broker's Record per --audit-sync mode over
// this store, one request at a time: what a request waits for. In journal
// mode the ingester's batches run beside it.
func BenchmarkAuditRecord(b *testing.B) {
	for _, sync := range []string{"journal", "normal", "full"} {
		b.Run(sync, func(b *testing.B) {
			mode := sqlite.AuditSyncNormal
			if sync == "full" {
				mode = sqlite.AuditSyncFull
			}
			s := sqlite.NewAuditStore(MustOpenDB(b), mode)
			if err := s.Open(); err != nil {
				b.Fatal(err)
			}
			br := audit.NewBroker(s, nil)
			if sync == "journal" {
				br.Journal = &audit.Journal{Path: filepath.Join(b.TempDir(), "audit.journal")}
			}
			if err := br.Open(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { br.Close(context.Background()); s.Close(); s.DB.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e := &tokenward.AuditEntry{RequestID: "req-0123456789abcdef", TokenID: "tok_0123456789", TokenName: "reader",
					Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed, Status: 200,
					SourceIP: "127.0.0.1", UserAgent: "Go-http-client/1.1"}
				if err := br.Record(b.Context(), e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := br.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
