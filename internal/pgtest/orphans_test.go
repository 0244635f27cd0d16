package pgtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOrphanChild is the child of TestSweepStopsOrphans: it starts a
// cluster, prints its directory and waits to be killed.
func TestOrphanChild(t *testing.T) {
	if os.Getenv("PGTEST_ORPHAN_CHILD") != "1" {
		t.Skip("run by TestSweepStopsOrphans")
	}
	c, err := start()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("DIR " + c.dir + "\n")
	time.Sleep(time.Minute)
}

// TestSweepStopsOrphans: a cluster whose test process was killed with
// SIGKILL (no Cleanup ran) is stopped and removed by the next sweep; a
// cluster whose owner lives is left alone.
func TestSweepStopsOrphans(t *testing.T) {
	live := Start(t)                                                          // owned by this process: must survive the sweep
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$", "-test.v") // #nosec G204 -- this test binary
	cmd.Env = append(os.Environ(), "PGTEST_ORPHAN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if d, ok := strings.CutPrefix(sc.Text(), "DIR "); ok {
			dir = d
			break
		}
	}
	if dir == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child started no cluster")
	}
	cmd.Process.Kill() // SIGKILL: its Cleanup never runs
	cmd.Wait()
	pid := filepath.Join(dir, "data", "postmaster.pid")
	if _, err := os.Stat(pid); err != nil {
		t.Fatalf("the orphan's server is not running before the sweep: %v", err)
	}

	// Another test process starting a cluster meanwhile may sweep the
	// orphan first: what counts is that it is gone.
	swept := sweepOrphans(os.TempDir(), live.pgCtl, live.asUser)
	if slices.Contains(swept, live.dir) {
		t.Fatalf("swept the cluster of a live owner %s", live.dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the orphan's directory is still there (%v); want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(live.dataDir, "postmaster.pid")); err != nil {
		t.Errorf("the live cluster was stopped: %v", err)
	}
}

func TestOwnerAlive(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{ownerLine(), true},
		{"999999999 1\n", false},                         // no such process
		{strings.Fields(ownerLine())[0] + " 1\n", false}, // this pid, another start time: a reused pid
		{"garbage", true},                                // not ours to judge
		{"", true},
	} {
		if got := ownerAlive(tc.line); got != tc.want {
			t.Errorf("ownerAlive(%q) = %v; want %v", tc.line, got, tc.want)
		}
	}
}
