package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A cluster outlives the test process that started it when that process
// is killed (a go test timeout, kill -9, an interrupted run): its Cleanup
// never runs, and the postgres server keeps running and holding its
// memory. Each cluster directory therefore names its owner in ownerFile —
// the test process's pid and its start time, so a reused pid is not
// mistaken for the owner — and every start first stops the clusters whose
// owner is gone.
const ownerFile = "owner"

// processStart is pid's start time in clock ticks since boot (field 22 of
// /proc/PID/stat), or "" when there is no such process.
func processStart(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ownerLine is what this process writes into ownerFile.
func ownerLine() string {
	return strconv.Itoa(os.Getpid()) + " " + processStart(os.Getpid()) + "\n"
}

// ownerAlive reports whether the process named by an ownerFile's line still
// runs.
func ownerAlive(line string) bool {
	f := strings.Fields(line)
	if len(f) != 2 {
		return true // not ours to judge: leave it
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return true
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	return processStart(pid) == f[1]
}

// sweepOrphans stops and removes the clusters under dir (os.TempDir())
// whose owner process is gone, and returns their directories. A directory
// without an owner file is left alone: it is being set up, or is not one
// of ours.
func sweepOrphans(dir, pgCtl, asUser string) []string {
	paths, _ := filepath.Glob(filepath.Join(dir, "pgtest-*", ownerFile))
	var swept []string
	for _, p := range paths {
		line, err := os.ReadFile(p) // #nosec G304 -- a file this package wrote under the temp dir
		if err != nil || ownerAlive(string(line)) {
			continue
		}
		c := &Cluster{dir: filepath.Dir(p), dataDir: filepath.Join(filepath.Dir(p), "data"), pgCtl: pgCtl, asUser: asUser}
		c.Stop()
		swept = append(swept, c.dir)
	}
	return swept
}
