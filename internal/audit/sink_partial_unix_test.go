//go:build linux

package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestSinkPartialWrite: a sink write that fails after part of the
// line reached the file (a full disk; here RLIMIT_FSIZE, in a child
// process) must not leave that part in front of the broker's retry of the
// same entry: the file sink would hold a line that is not JSON, and the
// webhook buffer would send a body that is not JSON, refused by the
// receiver and retried forever, so no later entry is delivered either.
func TestSinkPartialWrite(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T, dir string) (Sink, string) // the sink and the file it appends to
	}{
		{"file", func(t *testing.T, dir string) (Sink, string) {
			p := filepath.Join(dir, "audit.jsonl")
			return NewFileSink(p), p
		}},
		{"webhook", func(t *testing.T, dir string) (Sink, string) {
			s := newTestWebhook(t, newDownReceiver(t), dir, noSleep, nil)
			return s, filepath.Join(dir, webhookQueueFile)
		}},
	}
	child := os.Getenv("TOKENWARD_REVIEW_FSIZE_CHILD")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if child == "" {
				// RLIMIT_FSIZE is the whole process's: run the case alone.
				cmd := exec.Command(os.Args[0], "-test.run=^TestSinkPartialWrite$/^"+tc.name+"$", "-test.v")
				cmd.Env = append(os.Environ(), "TOKENWARD_REVIEW_FSIZE_CHILD=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%v\n%s", err, out)
				}
				return
			}
			ctx := context.Background()
			s, path := tc.open(t, t.TempDir())
			defer s.Close()
			e1, e2 := newEntry(1), newEntry(2)
			e1.Seq, e2.Seq, e2.Reason = 1, 2, "a reason long enough to be cut in the middle of its line"
			if err := s.Write(ctx, e1); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var old syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			lim := old
			lim.Cur = uint64(fi.Size()) + 40 // #nosec G115 -- a small file size
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
				t.Skip("cannot set RLIMIT_FSIZE:", err)
			}
			werr := s.Write(ctx, e2)
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			if werr == nil {
				t.Fatal("write past RLIMIT_FSIZE succeeded; want an error")
			}
			if err := s.Write(ctx, e2); err != nil { // the broker's retry
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var seqs []int64
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var e tokenward.AuditEntry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %d of %s is not JSON (%v): %.120q", len(seqs)+1, filepath.Base(path), err, sc.Text())
				}
				seqs = append(seqs, e.Seq)
			}
			if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
				t.Fatalf("got seqs %v; want [1 2]", seqs)
			}
		})
	}
}
