package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Stats counts what a scan read; the progress display polls it.
type Stats struct {
	Files   atomic.Int64
	Bytes   atomic.Int64
	Skipped atomic.Int64 // binary, too large or unreadable
}

// Item is one buffer to scan.
type Item struct {
	Path string
	Data []byte
	// Blob is the git blob id when the item came from history.
	Blob string
	// Lines, when set, limits findings to these 1-based line numbers (the
	// added lines of a staged change).
	Lines LineSet
	// unattributed marks history, whose findings are hidden behind others
	// only after attribution (see Worker.scan).
	unattributed bool
	done         func() // returns Data's buffer to its pool
	// file, when set, is read by the worker (into its own reused buffer)
	// instead of Data: reading in parallel matters on trees of small files.
	file string
	size int64
}

// LineSet is a set of 1-based line numbers held as ranges, so a huge hunk
// costs no memory.
type LineSet [][2]int // [first, last] inclusive

// Has reports whether line n is in the set.
func (s LineSet) Has(n int) bool {
	for _, r := range s {
		if n >= r[0] && n <= r[1] {
			return true
		}
	}
	return false
}

// run scans items from in with the scanner's workers and calls emit for
// each finding (serialised). It returns when in is closed and drained.
func (s *Scanner) run(ctx context.Context, in <-chan Item, stats *Stats, emit func(Item, Finding)) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := s.NewWorker()
			var buf []byte
			for it := range in {
				if it.file != "" {
					data, err := readFileInto(it.file, buf[:0], it.size, s.opts.MaxFileSize)
					if err != nil {
						stats.Skipped.Add(1)
						continue
					}
					buf, it.Data = data, data
				}
				if ctx.Err() == nil {
					fs := w.scan(it.Path, it.Data, !it.unattributed)
					if w.binary {
						stats.Skipped.Add(1)
					}
					stats.Files.Add(1)
					stats.Bytes.Add(int64(len(it.Data)))
					if len(fs) > 0 {
						mu.Lock()
						for _, f := range fs {
							if it.Lines == nil || it.Lines.Has(f.Line) {
								emit(it, f)
							}
						}
						mu.Unlock()
					}
				}
				if it.done != nil {
					it.done()
				}
			}
		}()
	}
	wg.Wait()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// ScanDir scans every regular file under root (skipping .git directories and
// symlinks). Paths in findings are relative to root, with forward slashes.
func (s *Scanner) ScanDir(ctx context.Context, root string, stats *Stats) ([]Finding, error) {
	if stats == nil {
		stats = &Stats{}
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	in := make(chan Item, 64)
	var out []Finding
	doneScan := make(chan struct{})
	go func() {
		s.run(ctx, in, stats, func(_ Item, f Finding) { out = append(out, f) })
		close(doneScan)
	}()
	var walkErr error
	if !fi.IsDir() {
		s.sendFile(ctx, in, root, filepath.Base(root), fi.Size(), stats)
	} else {
		// The root is followed when it is a symlink (the user named it; a
		// walk would see a link and stop); links inside it are not.
		walkRoot := root
		if lfi, err := os.Lstat(root); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			if r, err := filepath.EvalSymlinks(root); err == nil {
				walkRoot = r
			}
		}
		walkErr = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == walkRoot {
					return err
				}
				stats.Skipped.Add(1)
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				if d.Name() == ".git" && p != walkRoot {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				stats.Skipped.Add(1)
				return nil
			}
			rel, err := filepath.Rel(walkRoot, p)
			if err != nil {
				rel = p
			}
			s.sendFile(ctx, in, p, filepath.ToSlash(rel), info.Size(), stats)
			return nil
		})
	}
	close(in)
	<-doneScan
	if walkErr != nil {
		return nil, fmt.Errorf("scan %s: %w", root, walkErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	SortFindings(out)
	return out, nil
}

func (s *Scanner) sendFile(ctx context.Context, in chan<- Item, p, rel string, size int64, stats *Stats) {
	if size > s.opts.MaxFileSize {
		// Path-only rules still apply to files too large to read.
		stats.Skipped.Add(1)
		if len(s.pathRules) > 0 {
			in <- Item{Path: rel}
		}
		return
	}
	select {
	case in <- Item{Path: rel, file: p, size: size}:
	case <-ctx.Done():
	}
}

func readFileInto(p string, buf []byte, size, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	r := io.LimitReader(f, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, errors.New("file grew beyond the size limit")
	}
	return buf, nil
}

// ScanReader scans everything r yields (up to limit bytes; 0: the scanner's
// MaxFileSize) as the file name.
func (s *Scanner) ScanReader(name string, r io.Reader, limit int64) ([]Finding, error) {
	if limit <= 0 {
		limit = s.opts.MaxFileSize
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("scan %s: input is larger than %d bytes", name, limit)
	}
	fs := append([]Finding(nil), s.NewWorker().Scan(name, data)...)
	SortFindings(fs)
	return fs, nil
}
