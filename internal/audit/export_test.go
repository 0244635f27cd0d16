package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

func TestExportGolden(t *testing.T) {
	signer := mustSigner(t, 1)
	entries, cps := buildChain(t, 4, signer, 2)
	var buf bytes.Buffer
	if err := WriteExport(&buf, sliceSeq(entries), cps); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "export_v1.jsonl")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("got export\n%s\nwant\n%s", buf.Bytes(), want)
	}
}

// TestExportVerify exports a live store, reads it back and verifies it;
// then edits one line of the file and checks verify names that entry.
func TestExportVerify(t *testing.T) {
	signer := mustSigner(t, 1)
	store := mustFileStore(t, "")
	b := NewBroker(store, signer)
	b.Now, b.CheckpointEvery = newTestClock().Now, 5
	ctx := context.Background()
	if err := b.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 12; i++ {
		if err := b.Record(ctx, newEntry(i)); err != nil {
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
	d, err := ReadExport(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != 12 || len(d.Checkpoints) != 3 {
		t.Fatalf("got %d entries, %d checkpoints; want 12, 3", len(d.Entries), len(d.Checkpoints))
	}
	r, err := Verify(d.All(), d.Checkpoints, signer.PublicKey())
	if err != nil || !r.OK() {
		t.Fatalf("got %v, %+v; want a clean export", err, r)
	}

	tampered := strings.Replace(buf.String(), `"request_id":"req-0009"`, `"request_id":"req-9999"`, 1)
	if tampered == buf.String() {
		t.Fatal("test setup: nothing replaced")
	}
	d, err = ReadExport(strings.NewReader(tampered))
	if err != nil {
		t.Fatal(err)
	}
	r, err = Verify(d.All(), d.Checkpoints, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if p := r.First(); p == nil || p.Kind != KindModified || p.Seq != 9 {
		t.Errorf("got %v; want modified at seq 9", p)
	}
}

func TestReadExportRejects(t *testing.T) {
	header := `{"format":"tokenward-audit-export","version":1}` + "\n"
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty file"},
		{"not json", "hello\n", "not an export header"},
		{"wrong format", `{"format":"other","version":1}` + "\n", "format"},
		{"future version", `{"format":"tokenward-audit-export","version":2}` + "\n", "version 2"},
		{"unknown header field", `{"format":"tokenward-audit-export","version":1,"x":1}` + "\n", "not an export header"},
		{"blank line", header + "\n", "empty line"},
		{"neither", header + "{}\n", "exactly one"},
		{"both", header + `{"entry":{"seq":1},"checkpoint":{"seq":1}}` + "\n", "exactly one"},
		{"unknown field", header + `{"entry":{"seq":1,"secret":"x"}}` + "\n", "unknown field"},
		{"trailing data", header + `{"entry":{"seq":1}} {}` + "\n", "trailing"},
		{"line too long", header + `{"entry":{"reason":"` + strings.Repeat("a", MaxExportLine) + `"}}` + "\n", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadExport(strings.NewReader(tt.in))
			if tokenward.ErrorCode(err) != tokenward.EINVALID || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %v; want EINVALID mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

// FuzzReadExport: ReadExport never panics, and whatever it accepts writes
// back to a form that reads back to the same bytes.
func FuzzReadExport(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "export_v1.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"format":"tokenward-audit-export","version":1}` + "\n" + `{"entry":{"seq":1,"time":"2026-01-01T00:00:00+05:30"}}`))
	f.Add([]byte(`{"format":"tokenward-audit-export","version":1}` + "\n" + `{"checkpoint":{"seq":-1,"signature":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ReadExport(bytes.NewReader(in))
		if err != nil {
			// A hostile file must not make `audit verify --from` print it.
			if len(err.Error()) > 300 {
				t.Fatalf("error message is unbounded: %d bytes", len(err.Error()))
			}
			return
		}
		var out1 bytes.Buffer
		if err := WriteExport(&out1, d.All(), d.Checkpoints); err != nil {
			return // e.g. a year past 9999 cannot be written back as JSON
		}
		d2, err := ReadExport(bytes.NewReader(out1.Bytes()))
		if err != nil {
			t.Fatalf("got %v reading back our own export; want it to parse", err)
		}
		var out2 bytes.Buffer
		if err := WriteExport(&out2, d2.All(), d2.Checkpoints); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
			t.Fatalf("got a different export after a round trip:\n%s\nwant\n%s", out2.Bytes(), out1.Bytes())
		}
		// Verify must not panic on anything ReadExport accepts.
		Verify(d.All(), d.Checkpoints, mustKey(t, 1).Public().(ed25519.PublicKey))
	})
}
