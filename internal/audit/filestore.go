package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sync"

	"github.com/tokenward/tokenward"
)

// FileStore is a primary Store (and Source) kept in two JSON-lines files in
// a directory: audit.jsonl and checkpoints.jsonl. It serves tests and
// single-process installs without a database; the server's database
// implements the same interfaces.
type FileStore struct {
	Dir string
	// Sync makes every append reach the disk (fsync) before it returns, as
	// a database commit would. Default true.
	Sync bool

	mu      sync.Mutex
	entries *os.File
	cps     *os.File
	last    *tokenward.AuditEntry
}

// NewFileStore returns a store in dir; call Open.
func NewFileStore(dir string) *FileStore { return &FileStore{Dir: dir, Sync: true} }

// Open opens (creating) the files and finds the last entry. A final line
// without its newline is a write that never completed (a crash mid-append,
// never acknowledged), so it is cut off.
func (s *FileStore) Open() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("audit: file store: %w", err)
	}
	var err error
	if s.entries, err = openAppend(filepath.Join(s.Dir, "audit.jsonl")); err != nil {
		return err
	}
	if s.cps, err = openAppend(filepath.Join(s.Dir, "checkpoints.jsonl")); err != nil {
		s.entries.Close()
		return err
	}
	for e, err := range readJSONLines[tokenward.AuditEntry](s.entries.Name()) {
		if err != nil {
			s.Close()
			return err
		}
		if s.last == nil || e.Seq > s.last.Seq {
			s.last = e
		}
	}
	return nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: file store: %w", err)
	}
	if err := cutTornLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: file store: %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: file store: %w", err)
	}
	return f, nil
}

// cutTornLine truncates f after its last newline.
func cutTornLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	const chunk = 4096
	end := fi.Size()
	buf := make([]byte, chunk)
	for pos := end; pos > 0; {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if keep := pos + int64(i) + 1; keep != end {
				return f.Truncate(keep)
			}
			return nil
		}
	}
	return f.Truncate(0)
}

// AppendAudit appends e; ECONFLICT unless e.Seq follows the last entry.
func (s *FileStore) AppendAudit(ctx context.Context, e *tokenward.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		return ErrClosed
	}
	want := int64(1)
	if s.last != nil {
		want = s.last.Seq + 1
	}
	if e.Seq != want {
		return tokenward.Errorf(tokenward.ECONFLICT, "audit entry seq %d; want %d", e.Seq, want)
	}
	if err := s.appendLine(s.entries, e); err != nil {
		return err
	}
	s.last = cloneEntry(e)
	return nil
}

// LastAudit returns the last entry, or nil.
func (s *FileStore) LastAudit(ctx context.Context) (*tokenward.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil, nil
	}
	return cloneEntry(s.last), nil
}

// AppendCheckpoint appends cp.
func (s *FileStore) AppendCheckpoint(ctx context.Context, cp *Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cps == nil {
		return ErrClosed
	}
	return s.appendLine(s.cps, cp)
}

func (s *FileStore) appendLine(f *os.File, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("audit: file store: encode: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit: file store: write: %w", err)
	}
	if s.Sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("audit: file store: sync: %w", err)
		}
	}
	return nil
}

// AuditEntries yields the entries in file order.
func (s *FileStore) AuditEntries(ctx context.Context) iter.Seq2[*tokenward.AuditEntry, error] {
	return readJSONLines[tokenward.AuditEntry](filepath.Join(s.Dir, "audit.jsonl"))
}

// AuditCheckpoints returns the checkpoints in file order.
func (s *FileStore) AuditCheckpoints(ctx context.Context) ([]*Checkpoint, error) {
	var cps []*Checkpoint
	for cp, err := range readJSONLines[Checkpoint](filepath.Join(s.Dir, "checkpoints.jsonl")) {
		if err != nil {
			return nil, err
		}
		cps = append(cps, cp)
	}
	return cps, nil
}

// Close closes the files.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.entries != nil {
		err = s.entries.Close()
		s.entries = nil
	}
	if s.cps != nil {
		err = errors.Join(err, s.cps.Close())
		s.cps = nil
	}
	return err
}

// readJSONLines yields one decoded value per line of the file at path; a
// missing file yields nothing.
func readJSONLines[T any](path string) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			yield(nil, fmt.Errorf("audit: %w", err))
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), MaxExportLine)
		for line := 1; sc.Scan(); line++ {
			v := new(T)
			if err := json.Unmarshal(sc.Bytes(), v); err != nil {
				yield(nil, tokenward.Errorf(tokenward.EINVALID, "audit: %s line %d: %v", filepath.Base(path), line, err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(nil, fmt.Errorf("audit: read %s: %w", filepath.Base(path), err))
		}
	}
}
