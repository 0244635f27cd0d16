package audit

import (
	"bytes"
	"context"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestInvalidUTF8Verifies: a field holding bytes that are not UTF-8
// (a User-Agent with obs-text bytes, or one cut mid-rune at 256 bytes by
// the HTTP layer) must not make the stored trail, its export or the next
// start fail: JSON turns such bytes into U+FFFD, so the entry read back
// would no longer match the hash computed over the raw bytes.
func TestInvalidUTF8Verifies(t *testing.T) {
	tests := []struct {
		name string
		set  func(e *tokenward.AuditEntry)
	}{
		{"user agent obs-text", func(e *tokenward.AuditEntry) { e.UserAgent = "fake-agent/\xff\xfe" }},
		{"user agent cut mid-rune", func(e *tokenward.AuditEntry) { e.UserAgent = "fake-agent/\xc3" }},
		{"reason", func(e *tokenward.AuditEntry) { e.Reason = "bad name \x80" }},
		{"resource", func(e *tokenward.AuditEntry) { e.Resource = "proj/env/\xe2\x82" }},
		{"meta value", func(e *tokenward.AuditEntry) { e.Meta = map[string]string{"k": "v\xff"} }},
		{"meta key", func(e *tokenward.AuditEntry) { e.Meta = map[string]string{"k\xff": "v"} }},
		{"ci value", func(e *tokenward.AuditEntry) { e.CI = map[string]string{"ref": "refs/heads/\xff"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			store := mustFileStore(t, dir)
			signer := mustSigner(t, 1)
			b := NewBroker(store, signer)
			b.Now = newTestClock().Now
			if err := b.Open(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				e := newEntry(i)
				if i >= 2 { // the last one too: the next start reads it back
					tc.set(e)
				}
				if err := b.Record(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Export(ctx, &buf, store); err != nil {
				t.Fatal(err)
			}
			d, err := ReadExport(&buf)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Verify(d.All(), d.Checkpoints, signer.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK() {
				t.Errorf("export of an untampered trail: %v", r.First())
			}
			store.Close()
			// The next start reads the last entry back and checks its hash.
			store2 := mustFileStore(t, dir)
			b2 := NewBroker(store2, signer)
			if err := b2.Open(ctx); err != nil {
				t.Errorf("reopen: %v", err)
			} else {
				b2.Close(ctx)
			}
		})
	}
}
