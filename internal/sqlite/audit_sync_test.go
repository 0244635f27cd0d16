package sqlite_test

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward"
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
