//go:build !tokenward_client

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestREADMECommands holds the README to its promise of two commands: it
// names `make run` and `make test`, .ci/run calls exactly `make test`, and
// `make run` really starts a development server that answers with the
// token it prints (on a free port instead of the default one).
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts make run")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"make run", "make test"} {
		if !regexp.MustCompile(`(?m)^` + cmd + ` +#`).Match(readme) {
			t.Errorf("README.md: no %q line in its commands", cmd)
		}
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
		t.Errorf(".ci/run does not call `make test`")
	}

	cmd := exec.Command("make", "--no-print-directory", "run", "ARGS=--addr 127.0.0.1:0")
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make, go run and the server: stopped together
	// go run's build directory and the dev server's data directory go here,
	// where the cleanup below checks that both removed theirs.
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGINT, as Ctrl-C in the terminal `make run` was typed in: go run
		// then waits for the server and removes its build directory. On
		// SIGTERM it died at once and left it (tens of MB a test run).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return
		}
		left, _ := filepath.Glob(filepath.Join(tmp, "*"))
		if len(left) > 0 {
			t.Errorf("make run, stopped with Ctrl-C, left %q behind", left)
		}
	})
	vars := map[string]string{}
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	deadline := time.After(3 * time.Minute) // go run may compile
	for vars["TOKENWARD_ADDR"] == "" || vars["TOKENWARD_TOKEN"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("make run ended before printing its two lines:\n%s", stderr.String())
			}
			if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "TOKENWARD_") {
				vars[k] = v
			}
		case <-deadline:
			t.Fatalf("make run printed no address and token:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	req, _ := http.NewRequest("GET", vars["TOKENWARD_ADDR"]+"/v1/tokens/self", nil)
	req.Header.Set("Authorization", "Bearer "+vars["TOKENWARD_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the token make run printed: got %d from /v1/tokens/self; want 200", resp.StatusCode)
	}
}
