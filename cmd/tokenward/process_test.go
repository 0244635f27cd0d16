//go:build !tokenward_client

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServer runs the real binary as a dev server and returns the command,
// its address and admin token; its stderr is collected in logs.
func startServer(tb testing.TB, logs *bytes.Buffer, args ...string) (*exec.Cmd, string, string) {
	tb.Helper()
	return startServerOf(tb, filepath.Join(binDir, "tokenward"), logs, args...)
}

// startServerOf is startServer with the binary bin. The dev server's data
// directory (its keys among it) goes under the test's own temporary
// directory: the cleanup kills the server, which then cannot remove it.
func startServerOf(tb testing.TB, bin string, logs *bytes.Buffer, args ...string) (*exec.Cmd, string, string) {
	tb.Helper()
	return startServerIn(tb, bin, tb.TempDir(), logs, args...)
}

// startServerIn is startServerOf with the temporary directory tmp
// (TMPDIR), where the dev server makes its data directory.
func startServerIn(tb testing.TB, bin, tmp string, logs *bytes.Buffer, args ...string) (*exec.Cmd, string, string) {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"server", "--dev", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	env := map[string]string{}
	for len(env) < 2 && sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	go io.Copy(io.Discard, out)
	if env["TOKENWARD_ADDR"] == "" || env["TOKENWARD_TOKEN"] == "" {
		tb.Fatalf("server printed no address/token; log:\n%s", logs)
	}
	return cmd, env["TOKENWARD_ADDR"], env["TOKENWARD_TOKEN"]
}

// TestGracefulShutdown sends SIGTERM to a real server: it stops serving,
// exits 0 and says so.
func TestGracefulShutdown(t *testing.T) {
	var logs bytes.Buffer
	cmd, addr, _ := startServer(t, &logs)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v; want 0. log:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("log does not mention the shutdown:\n%s", logs.String())
	}
	if _, err := os.Stat(strings.TrimPrefix(addr, "http://")); err == nil {
		t.Fatal("unexpected file")
	}
}

// TestKilledDevServerLeavesNothing: a dev server that startServer's cleanup
// kills cannot remove its data directory (its master and audit keys
// among it), so that directory must be under the test's own temporary
// directory, never left in the system's.
func TestKilledDevServerLeavesNothing(t *testing.T) {
	pattern := filepath.Join(os.TempDir(), "tokenward-dev-*")
	before, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("server", func(t *testing.T) {
		var logs bytes.Buffer
		startServer(t, &logs)
	})
	after, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range after {
		if !slices.Contains(before, dir) {
			os.RemoveAll(dir)
			t.Errorf("the killed dev server left %s behind", dir)
		}
	}
}

// TestDevServerRemovesKilledDevServersDirs: a dev server that starts
// removes the data directories (master key and all) that killed dev
// servers left, and nothing else: not a running dev server's, not one
// without an owner file (an older version's), not what a link points to.
func TestDevServerRemovesKilledDevServersDirs(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(binDir, "tokenward")
	devDirs := func() []string {
		t.Helper()
		dirs, err := filepath.Glob(filepath.Join(tmp, "tokenward-dev-*"))
		if err != nil {
			t.Fatal(err)
		}
		return dirs
	}
	newDir := func(before []string) string {
		t.Helper()
		var added []string
		for _, d := range devDirs() {
			if !slices.Contains(before, d) {
				added = append(added, d)
			}
		}
		if len(added) != 1 {
			t.Fatalf("got new dev directories %q; want one", added)
		}
		return added[0]
	}

	// Not to be touched: an older version's directory, and a link whose
	// target looks like a dead server's directory.
	legacy := filepath.Join(tmp, "tokenward-dev-legacy")
	target := filepath.Join(t.TempDir(), "target")
	for _, d := range []string{legacy, target} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "owner.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "tokenward-dev-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}

	var liveLogs, killedLogs, nextLogs bytes.Buffer
	before := devDirs()
	_, liveAddr, _ := startServerIn(t, bin, tmp, &liveLogs)
	live := newDir(before)

	before = devDirs()
	killed, _, _ := startServerIn(t, bin, tmp, &killedLogs)
	dead := newDir(before)
	if _, err := os.Stat(filepath.Join(dead, "data", "master.key")); err != nil {
		t.Fatalf("the dev server's master key: %v", err)
	}
	killed.Process.Kill()
	killed.Wait()
	if _, err := os.Stat(dead); err != nil {
		t.Fatalf("the killed server's directory: %v; want it left behind until the next start", err)
	}

	before = devDirs()
	nextCmd, _, _ := startServerIn(t, bin, tmp, &nextLogs)
	next := newDir(slices.DeleteFunc(before, func(d string) bool { return d == dead }))
	got := devDirs()
	slices.Sort(got)
	want := []string{legacy, link, live, next}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dev directories after the next start: got %q; want %q (the killed server's %s gone)", got, want, dead)
	}
	if _, err := os.Stat(filepath.Join(target, "owner.lock")); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}
	// Stopped, so that its log is read after the last write to it.
	nextCmd.Process.Kill()
	nextCmd.Wait()
	if !strings.Contains(nextLogs.String(), "removed the data directory of a dev server that was killed") ||
		!strings.Contains(nextLogs.String(), dead) {
		t.Errorf("the next server's log does not name the directory it removed:\n%s", nextLogs.String())
	}
	resp, err := http.Get(liveAddr + "/v1/health")
	if err != nil {
		t.Fatalf("the running server after the sweep: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the running server after the sweep: status %d", resp.StatusCode)
	}
}

// TestTLS serves over TLS with a certificate signed by a test CA; the CLI
// trusts it through TOKENWARD_CACERT and refuses it without.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := writeTestCert(t, dir)
	var logs bytes.Buffer
	_, addr, token := startServer(t, &logs, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(addr, "https://") {
		t.Fatalf("got address %s; want https", addr)
	}
	for _, tc := range []struct {
		name string
		ca   string
		ok   bool
	}{{"trusted", caFile, true}, {"untrusted", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := exec.Command(filepath.Join(binDir, "tokenward"), "project", "list")
			c.Env = append(os.Environ(), "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token, "TOKENWARD_CACERT="+tc.ca)
			out, err := c.CombinedOutput()
			if (err == nil) != tc.ok {
				t.Fatalf("got %v: %s; want ok=%v", err, out, tc.ok)
			}
			if !tc.ok && !strings.Contains(string(out), "certificate") {
				t.Fatalf("got %s; want a certificate error", out)
			}
		})
	}
}

// TestPlainHTTPWarning: plain HTTP on a non-loopback address is warned
// about loudly; on loopback it is not.
func TestPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			var logs bytes.Buffer
			cmd := exec.Command(filepath.Join(binDir, "tokenward"), "server", "--dev", "--addr", tc.addr)
			cmd.Stderr = &logs
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			bufio.NewReader(out).ReadString('\n') // the address line: the server is up
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			if got := strings.Contains(logs.String(), "PLAIN HTTP ON A NON-LOOPBACK ADDRESS"); got != tc.warn {
				t.Fatalf("warning shown: %v; want %v. log:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}

func TestSplitPathErrorsAreBounded(t *testing.T) {
	for _, in := range []string{strings.Repeat("a", 10000), strings.Repeat("a/", 5000), "a//b"} {
		_, err := splitPath(in, 3)
		if err == nil || len(err.Error()) > 200 {
			t.Fatalf("splitPath(%d bytes): got %d-byte error %v; want a bounded error", len(in), len(fmt.Sprint(err)), err != nil)
		}
	}
}

// TestPProfOnlyOnMetricsListener: Go's profiler is served only with
// --pprof, and only on the metrics listener, never on the API address; its
// command line never (a flag may hold a credential).
func TestPProfOnlyOnMetricsListener(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof=%v", pprof), func(t *testing.T) {
			metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args := []string{"--metrics-addr", metrics}
			if pprof {
				args = append(args, "--pprof")
			}
			var logs bytes.Buffer
			_, addr, token := startServer(t, &logs, args...)
			status := func(url string) int {
				t.Helper()
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+token) // an admin may not profile through the API either
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			wantMetrics := http.StatusNotFound
			if pprof {
				wantMetrics = http.StatusOK
			}
			for _, c := range []struct {
				url  string
				want int
			}{
				{addr + "/debug/pprof/", http.StatusNotFound},
				{addr + "/debug/pprof/cmdline", http.StatusNotFound},
				{"http://" + metrics + "/debug/pprof/", wantMetrics},
				{"http://" + metrics + "/debug/pprof/heap", wantMetrics},
				{"http://" + metrics + "/debug/pprof/cmdline", http.StatusNotFound}, // flags may hold a credential
				{"http://" + metrics + "/metrics", http.StatusOK},
			} {
				if got := status(c.url); got != c.want {
					t.Errorf("GET %s: got %d; want %d", c.url, got, c.want)
				}
			}
		})
	}
}

// TestQuickCommandEndsOnSIGINT: a quick command (TestQuickCommands) has no
// signal handler, so SIGINT ends it at once by the signal's default action,
// here while `secret set` waits for its value on stdin: nothing is written.
func TestQuickCommandEndsOnSIGINT(t *testing.T) {
	var logs bytes.Buffer
	_, addr, token := startServer(t, &logs)
	env := append(os.Environ(), "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token)
	for _, bin := range []string{"tokenward", "tokenward-client"} {
		t.Run(bin, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, bin), "secret", "set", "payments/prod/"+strings.ToUpper(strings.ReplaceAll(bin, "-", "_")))
			cmd.Env = env
			stdin, err := cmd.StdinPipe() // left open: the command waits for the value
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Past start-up, where a handler would have been installed:
			// some thread reads stdin.
			waitReadingStdin(t, cmd.Process.Pid)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10s after SIGINT; output: %s", out.String())
			}
			ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
				t.Errorf("ended with %v; want killed by SIGINT; output: %s", cmd.ProcessState, out.String())
			}
		})
	}
}

// waitReadingStdin waits until a thread of process pid is in a read(2) of
// file descriptor 0 (/proc/PID/task/TID/syscall: the call's number, then
// its arguments).
func waitReadingStdin(t *testing.T, pid int) {
	t.Helper()
	read := map[string]string{"amd64": "0", "arm64": "63"}[runtime.GOARCH]
	if read == "" {
		t.Skipf("no read(2) number known for %s", runtime.GOARCH)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			if fs := strings.Fields(string(b)); len(fs) > 1 && fs[0] == read && fs[1] == "0x0" {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never read its stdin", pid)
}
