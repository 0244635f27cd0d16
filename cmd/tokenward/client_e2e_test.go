//go:build !tokenward_client

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClientBinary runs the client build (binDir/tokenward-client) where
// a pipeline would: installed beside tokenward-server, alone, reached
// through a symbolic link, or beside a tokenward-server that is a client
// too. Its own commands work alone; a forwarded one answers exactly as
// the full build does, or, without the full build, fails naming what it
// looked for.
func TestClientBinary(t *testing.T) {
	var logs bytes.Buffer
	_, addr, token := startServer(t, &logs)
	full := filepath.Join(binDir, "tokenward")
	const value = "s3cr3t-client-value"
	for _, argv := range [][]string{{"project", "create", "payments", "--envs", "prod"}, {"secret", "set", "payments/prod/KEY"}} {
		c := exec.Command(full, argv...)
		c.Env = append(os.Environ(), "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token)
		c.Stdin = strings.NewReader(value)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}

	client := filepath.Join(binDir, "tokenward-client")
	installs := map[string]func(t *testing.T) string{ // the client's path
		"installed": func(*testing.T) string { return client },
		"alone": func(t *testing.T) string {
			dir := t.TempDir()
			linkOrCopy(t, client, filepath.Join(dir, "tokenward"))
			return filepath.Join(dir, "tokenward")
		},
		"symlinked": func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "tokenward")
			if err := os.Symlink(client, link); err != nil {
				t.Fatal(err)
			}
			return link
		},
		"server is a client": func(t *testing.T) string {
			dir := t.TempDir()
			linkOrCopy(t, client, filepath.Join(dir, "tokenward"))
			linkOrCopy(t, client, filepath.Join(dir, serverBinaryName))
			return filepath.Join(dir, "tokenward")
		},
	}
	var names []string
	for _, top := range NewMain().topCommands() {
		names = append(names, top.names[0])
	}
	tests := []struct {
		name, install string
		args          []string
		asFull        bool     // stdout, stderr and exit code those of the full build
		fullToClient  []string // old, new pairs: what differs in asFull's stdout
		wantOut       string   // else stdout
		wantErr       []string // and these in stderr, with a non-zero exit
	}{
		{name: "help lists every command", install: "alone", args: []string{"--help"}, asFull: true},
		{name: "version", install: "alone", args: []string{"version"}, asFull: true, fullToClient: []string{"build:  full\n", "build:  client\n"}},
		{name: "version json", install: "alone", args: []string{"version", "-o", "json"}, asFull: true, fullToClient: []string{`"build": "full"`, `"build": "client"`}},
		{name: "secret get without the full build", install: "alone", args: []string{"secret", "get", "payments/prod/KEY"}, wantOut: value},
		{name: "secret get installed", install: "installed", args: []string{"secret", "get", "payments/prod/KEY"}, wantOut: value},
		{name: "forwarded --help", install: "installed", args: []string{"server", "--help"}, asFull: true},
		{name: "forwarded help NAME", install: "installed", args: []string{"help", "init"}, asFull: true},
		{name: "forwarded flag error", install: "installed", args: []string{"migrate", "--no-such-flag"}, asFull: true},
		{name: "forwarded completion", install: "installed", args: []string{"__complete", "server", "--de"}, asFull: true},
		{name: "forwarded completion without descriptions", install: "installed", args: []string{"__completeNoDesc", "bench", "--con"}, asFull: true},
		{name: "completion of command names", install: "alone", args: []string{"__complete", ""}, asFull: true},
		{name: "completion script", install: "alone", args: []string{"completion", "bash"}, asFull: true},
		{name: "forwarded through a symbolic link", install: "symlinked", args: []string{"init", "--help"}, asFull: true},
		{name: "forwarded without the full build", install: "alone", args: []string{"init", "--data-dir", "DATA"},
			wantErr: []string{"tokenward: init needs the full build, tokenward-server, which is not installed", "beside this client and in PATH", "make build"}},
		{name: "forwarded help without the full build", install: "alone", args: []string{"help", "server"},
			wantErr: []string{"server: Serve the API", "tokenward: server needs the full build, tokenward-server, which is not installed"}},
		{name: "forwarded --help without the full build", install: "alone", args: []string{"migrate", "--help"},
			wantErr: []string{"tokenward: migrate needs the full build"}},
		{name: "forwarded to a client", install: "server is a client", args: []string{"server", "--dev"},
			wantErr: []string{"tokenward-server is a client build too (it forwarded server back to itself)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			env := append(os.Environ(), "PATH="+t.TempDir(), "HOME="+work, "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token)
			run := func(bin string) (stdout, stderr string, code int) {
				var o, e bytes.Buffer
				c := exec.Command(bin, tt.args...)
				c.Dir, c.Env, c.Stdout, c.Stderr = work, env, &o, &e
				err := c.Run()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return o.String(), e.String(), code
			}
			bin := installs[tt.install](t)
			out, errOut, code := run(bin)
			switch {
			case tt.asFull:
				fout, ferr, fcode := run(full)
				if tt.fullToClient != nil {
					if !strings.Contains(fout, tt.fullToClient[0]) {
						t.Errorf("the full build's stdout lacks %q:\n%s", tt.fullToClient[0], fout)
					}
					fout = strings.NewReplacer(tt.fullToClient...).Replace(fout)
				}
				if out != fout || errOut != ferr || code != fcode {
					t.Errorf("client: exit %d, stdout:\n%s\nstderr:\n%s\nwant the full build's: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut, fcode, fout, ferr)
				}
			case tt.wantErr != nil:
				if code == 0 {
					t.Errorf("exit 0; want non-zero")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(errOut, w) {
						t.Errorf("stderr %q; want it to hold %q", errOut, w)
					}
				}
				if entries, _ := os.ReadDir(work); len(entries) > 0 {
					t.Errorf("the failed command made %v in its working directory", entries)
				}
			default:
				if code != 0 || out != tt.wantOut {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, tt.wantOut)
				}
			}
			if strings.Contains(out+errOut, token) {
				t.Errorf("the output holds the token")
			}
			if tt.args[0] == "--help" {
				for _, name := range names {
					if !strings.Contains(out, "\n  "+name+" ") {
						t.Errorf("client --help does not list %s:\n%s", name, out)
					}
				}
			}
		})
	}
}

// TestClientForwardsServer starts `tokenward server --dev` through the
// client: the process the test started is the server (the client exec'd
// tokenward-server in its place), so its pid is what a supervisor or a
// kill -9 reaches.
func TestClientForwardsServer(t *testing.T) {
	var logs bytes.Buffer
	cmd, addr, token := startServerOf(t, filepath.Join(binDir, "tokenward-client"), &logs)
	resp, err := http.Get(addr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/health: got %s; want 200 OK", resp.Status)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(binDir, serverBinaryName); exe != want {
		t.Errorf("pid %d runs %s; want %s", cmd.Process.Pid, exe, want)
	}
	// the client reaches the server it started
	get := exec.Command(filepath.Join(binDir, "tokenward-client"), "project", "list")
	get.Env = append(os.Environ(), "TOKENWARD_ADDR="+addr, "TOKENWARD_TOKEN="+token)
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("project list: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(addr + "/v1/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("/v1/health after kill -9 of pid %d: got %s; want no answer", cmd.Process.Pid, resp.Status)
	}
}

// linkOrCopy puts the executable from at to: a hard link (which keeps the
// name it is run by), or a copy across file systems.
func linkOrCopy(t *testing.T, from, to string) {
	t.Helper()
	if os.Link(from, to) == nil {
		return
	}
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o700); err != nil { // #nosec G306 -- an executable for the test
		t.Fatal(err)
	}
}
