package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestFileStoreTornWrite: a crash mid-append leaves a line without its
// newline; Open cuts it, and the chain continues from the last whole entry.
func TestFileStoreTornWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := mustFileStore(t, dir)
	b := openBroker(t, fs)
	for i := 1; i <= 3; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close(ctx)
	fs.Close()
	f, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2026-`)
	f.Close()

	fs = mustFileStore(t, dir)
	last, err := fs.LastAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last == nil || last.Seq != 3 {
		t.Fatalf("got last %+v; want seq 3", last)
	}
	b = openBroker(t, fs)
	e := newEntry(4)
	if err := b.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Errorf("got seq %d; want 4", e.Seq)
	}
	b.Close(ctx)
	mustVerifyStore(t, fs, 4)
}

func TestFileStoreConflict(t *testing.T) {
	fs := mustFileStore(t, "")
	entries, _ := buildChain(t, 2, nil, 0)
	ctx := context.Background()
	if err := fs.AppendAudit(ctx, entries[1]); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("got %v appending seq 2 first; want ECONFLICT", err)
	}
	if err := fs.AppendAudit(ctx, entries[0]); err != nil {
		t.Fatal(err)
	}
	if err := fs.AppendAudit(ctx, entries[0]); tokenward.ErrorCode(err) != tokenward.ECONFLICT {
		t.Errorf("got %v appending seq 1 twice; want ECONFLICT", err)
	}
	fi, err := os.Stat(filepath.Join(fs.Dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %04o; want 0600", fi.Mode().Perm())
	}
}

func TestRecordValidates(t *testing.T) {
	b := openBroker(t, mustFileStore(t, ""))
	defer b.Close(context.Background())
	tests := []struct {
		name string
		e    *tokenward.AuditEntry
	}{
		{"no action", &tokenward.AuditEntry{Outcome: tokenward.OutcomeAllowed}},
		{"unknown outcome", &tokenward.AuditEntry{Action: "secret.read", Outcome: "maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.Record(context.Background(), tt.e); tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Errorf("got %v; want EINVALID", err)
			}
		})
	}
}
