package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tokenward/tokenward"
)

// WriterSink writes each entry as one JSON line to W (os.Stdout for the
// stdout sink).
type WriterSink struct {
	W    io.Writer
	name string
	mu   sync.Mutex
}

// NewStdoutSink returns a WriterSink on standard output.
func NewStdoutSink() *WriterSink { return &WriterSink{W: os.Stdout, name: "stdout"} }

// NewWriterSink returns a WriterSink on w, named name in logs and stats.
func NewWriterSink(name string, w io.Writer) *WriterSink { return &WriterSink{W: w, name: name} }

func (s *WriterSink) Name() string { return s.name }

func (s *WriterSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	b, err := marshalLine(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.W.Write(b)
	return err
}

func (s *WriterSink) Close() error { return nil }

func marshalLine(e *tokenward.AuditEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode entry %d: %w", e.Seq, err)
	}
	return append(b, '\n'), nil
}

// FileSink appends JSON lines to Path and rotates by size: when a write
// would take the file past MaxBytes, Path becomes Path.1, Path.1 becomes
// Path.2 and so on; files beyond Path.Keep are removed.
type FileSink struct {
	Path     string
	MaxBytes int64 // default 100 MiB
	Keep     int   // rotated files kept; default 5

	mu   sync.Mutex
	f    *os.File
	size int64
}

// NewFileSink returns a file sink with the default limits.
func NewFileSink(path string) *FileSink {
	return &FileSink{Path: path, MaxBytes: 100 << 20, Keep: 5}
}

func (s *FileSink) Name() string { return "file" }

func (s *FileSink) Write(ctx context.Context, e *tokenward.AuditEntry) error {
	b, err := marshalLine(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.size > 0 && s.size+int64(len(b)) > s.maxBytes() {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(b)
	s.size += int64(n)
	if err != nil {
		// Part of the line may be in the file (a full disk): the broker
		// retries the entry, and its line must not be glued onto that
		// part. The next Write reopens the file, which cuts it off.
		s.f.Close()
		s.f = nil
		return fmt.Errorf("file sink: write: %w", err)
	}
	return nil
}

func (s *FileSink) maxBytes() int64 {
	if s.MaxBytes <= 0 {
		return 100 << 20
	}
	return s.MaxBytes
}

// open opens the file for appending and cuts off a final line without its
// newline (a write that failed or a crash mid-write left it).
func (s *FileSink) open() error {
	f, err := os.OpenFile(s.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if err := cutTornLine(f); err != nil {
		f.Close()
		return fmt.Errorf("file sink: cut torn line: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file sink: %w", err)
	}
	s.f, s.size = f, fi.Size()
	return nil
}

func (s *FileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("file sink: rotate: %w", err)
	}
	s.f = nil
	keep := s.Keep
	if keep <= 0 {
		keep = 5
	}
	os.Remove(fmt.Sprintf("%s.%d", s.Path, keep))
	for i := keep - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", s.Path, i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", s.Path, i+1)); err != nil {
				return fmt.Errorf("file sink: rotate: %w", err)
			}
		}
	}
	if err := os.Rename(s.Path, s.Path+".1"); err != nil {
		return fmt.Errorf("file sink: rotate: %w", err)
	}
	return s.open()
}

func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
