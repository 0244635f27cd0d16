package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/tokenward/tokenward"
)

// Source is what Export and `audit verify` read from the live store.
type Source interface {
	// AuditEntries yields every entry in the order it was stored (for SQL:
	// ORDER BY the insertion rowid, not by seq, so reordering stays visible).
	AuditEntries(ctx context.Context) iter.Seq2[*tokenward.AuditEntry, error]
	// AuditCheckpoints returns every checkpoint, oldest first.
	AuditCheckpoints(ctx context.Context) ([]*Checkpoint, error)
}

// CheckpointTail reads a store's newest checkpoint alone: a server starting
// on a shared database checks its audit key against it, and reading every
// checkpoint for that grew with the trail (one per CheckpointEvery entries).
type CheckpointTail interface {
	// LastAuditCheckpoint returns the newest checkpoint, or nil when there
	// is none.
	LastAuditCheckpoint(ctx context.Context) (*Checkpoint, error)
}

// Export format: JSON lines. The first line is a header; every other line
// holds exactly one of "entry" or "checkpoint".
const (
	ExportFormat  = "tokenward-audit-export"
	ExportVersion = 1
	// MaxExportLine bounds one line of an export, so a hostile file cannot
	// make ReadExport buffer without limit.
	MaxExportLine = 1 << 20
)

type exportHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

type exportLine struct {
	Entry      *tokenward.AuditEntry `json:"entry,omitempty"`
	Checkpoint *Checkpoint           `json:"checkpoint,omitempty"`
}

// Export writes the header, every checkpoint and then every entry of src to
// w as JSON lines.
func Export(ctx context.Context, w io.Writer, src Source) error {
	cps, err := src.AuditCheckpoints(ctx)
	if err != nil {
		return fmt.Errorf("audit: export: read checkpoints: %w", err)
	}
	return WriteExport(w, src.AuditEntries(ctx), cps)
}

// WriteExport writes an export of entries and checkpoints to w.
func WriteExport(w io.Writer, entries iter.Seq2[*tokenward.AuditEntry, error], cps []*Checkpoint) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(exportHeader{Format: ExportFormat, Version: ExportVersion}); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	for _, cp := range cps {
		if err := enc.Encode(exportLine{Checkpoint: cp}); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	for e, err := range entries {
		if err != nil {
			return fmt.Errorf("audit: export: read entries: %w", err)
		}
		if err := enc.Encode(exportLine{Entry: e}); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// ExportData is an export read back: entries in file order, checkpoints.
type ExportData struct {
	Entries     []*tokenward.AuditEntry
	Checkpoints []*Checkpoint
}

// All yields the entries, for Verify.
func (d *ExportData) All() iter.Seq2[*tokenward.AuditEntry, error] {
	return func(yield func(*tokenward.AuditEntry, error) bool) {
		for _, e := range d.Entries {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// ReadExport parses an export. It checks the structure only (header, one
// object per line, known fields); whether the chain holds is Verify's job,
// so a tampered but well-formed file reads fine.
func ReadExport(r io.Reader) (*ExportData, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), MaxExportLine)
	d := &ExportData{}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			var h exportHeader
			if err := strictUnmarshal(b, &h); err != nil {
				return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line 1: not an export header: %s", clipError(err))
			}
			if h.Format != ExportFormat || h.Version != ExportVersion {
				return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line 1: format %q version %d; want %q version %d", clip(h.Format), h.Version, ExportFormat, ExportVersion)
			}
			continue
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line %d: empty line", line)
		}
		var l exportLine
		if err := strictUnmarshal(b, &l); err != nil {
			return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line %d: %s", line, clipError(err))
		}
		switch {
		case l.Entry != nil && l.Checkpoint == nil:
			d.Entries = append(d.Entries, l.Entry)
		case l.Checkpoint != nil && l.Entry == nil:
			d.Checkpoints = append(d.Checkpoints, l.Checkpoint)
		default:
			return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line %d: want exactly one of \"entry\" or \"checkpoint\"", line)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: line %d: longer than %d bytes", line+1, MaxExportLine)
		}
		return nil, fmt.Errorf("audit export: read: %w", err)
	}
	if line == 0 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "audit export: empty file")
	}
	return d, nil
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// clipError bounds a decoding error, which can quote a field name of the
// file's (an unknown field) at any length.
func clipError(err error) string {
	if s := err.Error(); len(s) > 160 {
		return strings.ToValidUTF8(s[:160], "") + "..."
	}
	return err.Error()
}

// clip shortens outside input quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
