//go:build !tokenward_client

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerHelpHidesStorageURL: TOKENWARD_STORAGE is where the docs tell
// operators to put the PostgreSQL URL, password included, so that it stays
// out of the command line; `--help` must not print it as the flag's
// default. The variable still selects the backend.
func TestServerHelpHidesStorageURL(t *testing.T) {
	const password = "fake-pw-not-real-0042"
	env := map[string]string{"TOKENWARD_STORAGE": "postgres://tw:" + password + "@db.invalid:5432/tw"}
	for _, cmd := range []string{"server", "init"} {
		out, errOut, _ := runCLI(t, env, cmd, "--help")
		if !strings.Contains(out+errOut, "--storage") {
			t.Fatalf("%s --help shows no --storage flag:\n%s%s", cmd, out, errOut)
		}
		if strings.Contains(out+errOut, password) {
			t.Errorf("%s --help shows the PostgreSQL password from TOKENWARD_STORAGE:\n%s%s", cmd, out, errOut)
		}
	}
	// The variable is still read: a URL that is not PostgreSQL's is refused.
	_, errOut, code := runCLI(t, map[string]string{"TOKENWARD_STORAGE": "mysql://x"}, "server", "--data-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "--storage: want a postgres://") {
		t.Errorf("TOKENWARD_STORAGE=mysql://x: got exit %d, %q; want the --storage usage error", code, errOut)
	}
	_, errOut, code = runCLI(t, env, "server", "--dev")
	if code != 2 || !strings.Contains(errOut, "--dev runs on a throwaway SQLite file") {
		t.Errorf("TOKENWARD_STORAGE with --dev: got exit %d, %q; want the --dev usage error", code, errOut)
	}
}

// reviewInitDir makes a SQLite data directory with `init`'s code.
func reviewInitDir(t *testing.T) string {
	t.Helper()
	m := &Main{Getenv: func(string) string { return "" }}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := m.initDataDir(context.Background(), dir, storageConfig{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reviewServer starts the real binary's server with args and waits for
// its address line, or for it to exit. It returns the address ("" if the
// server exited without one), its stderr, the command and a channel that
// gets its exit.
func reviewServer(t *testing.T, args ...string) (addr string, logs *bytes.Buffer, cmd *exec.Cmd, exited chan error) {
	t.Helper()
	logs = &bytes.Buffer{}
	cmd = exec.Command(filepath.Join(binDir, "tokenward"), append([]string{"server", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = os.Environ()
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	done := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "TOKENWARD_ADDR="); ok {
				lines <- a
				break
			}
		}
		close(lines)
		for sc.Scan() {
		}
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
	select {
	case a := <-lines:
		return a, logs, cmd, exited
	case <-time.After(30 * time.Second):
		t.Fatalf("server neither served nor exited; log:\n%s", logs)
	}
	return "", logs, cmd, exited
}

// TestSecondServerOnSQLiteDataDirRefused: SQLite is one server per data
// directory (docs/scale-out.md; the SQLite elector makes every server the
// leader, rotations have no claims there, lease scope holds are in
// memory). The audit journal's lock refuses a second server only when
// both use the journal: with --audit-sync normal or full the journal is
// released after its replay, and a second server used to start and lead
// beside the first — also through another path to the same directory.
func TestSecondServerOnSQLiteDataDirRefused(t *testing.T) {
	dir := reviewInitDir(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	first, logs, _, _ := reviewServer(t, "--data-dir", dir, "--audit-sync", "normal")
	if first == "" {
		t.Fatalf("first server did not start; log:\n%s", logs)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"normal", []string{"--data-dir", dir, "--audit-sync", "normal"}},
		{"full", []string{"--data-dir", dir, "--audit-sync", "full"}},
		{"journal", []string{"--data-dir", dir}},
		{"symlink", []string{"--data-dir", link, "--audit-sync", "normal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, logs, _, exited := reviewServer(t, tc.args...)
			if addr != "" {
				t.Fatalf("a second server serves %s on the data directory the first one (%s) serves; log:\n%s", addr, first, logs)
			}
			if err := <-exited; err == nil {
				t.Fatalf("second server exited 0; log:\n%s", logs)
			}
			if !strings.Contains(logs.String(), "another tokenward server") {
				t.Errorf("second server's error does not say another server runs there:\n%s", logs)
			}
		})
	}
}

// TestServerTLSFilesCheckedBeforeServing: a --tls-cert/--tls-key pair that
// cannot be loaded stops the server before it announces an address (and
// before its background jobs run), not after.
func TestServerTLSFilesCheckedBeforeServing(t *testing.T) {
	dir := reviewInitDir(t)
	missing := filepath.Join(t.TempDir(), "missing")
	certFile, _, _ := writeTestCert(t, t.TempDir())
	for _, tc := range []struct{ name, cert, key string }{
		{"missing files", missing + ".crt", missing + ".key"},
		{"key is not a key", certFile, certFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, logs, _, exited := reviewServer(t, "--data-dir", dir, "--tls-cert", tc.cert, "--tls-key", tc.key)
			if addr != "" {
				t.Errorf("server announced %s before finding its TLS files unusable; log:\n%s", addr, logs)
			}
			if err := <-exited; err == nil {
				t.Fatalf("server exited 0; log:\n%s", logs)
			}
			if strings.Contains(logs.String(), "leading:") || strings.Contains(logs.String(), "msg=serving") {
				t.Errorf("server started serving and its jobs before checking its TLS files; log:\n%s", logs)
			}
			if !strings.Contains(logs.String(), "--tls-cert") {
				t.Errorf("error does not name the TLS flags:\n%s", logs)
			}
		})
	}
}
