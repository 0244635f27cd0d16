//go:build !tokenward_client

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchServer is a `tokenward server` that bench started: this binary run
// as a child process, so its CPU and memory are its own, not the load
// generator's.
type benchServer struct {
	cmd     *exec.Cmd
	addr    string // http://127.0.0.1:PORT
	logPath string
}

func (s *benchServer) pid() int { return s.cmd.Process.Pid }

// startBenchServers runs `tokenward init` on a data directory under dir and
// starts n servers, each on its own data directory holding the install's
// master key (and the first server's audit key), on storage (a PostgreSQL
// URL, or "" for SQLite in the first data directory). It returns the
// servers started, even on error, so the caller stops them, and the admin
// token init printed. The URL reaches the children through their
// environment, never their argv (which `ps` shows), and no error repeats it.
func startBenchServers(ctx context.Context, dir, storage string, n int) ([]*benchServer, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("finding this binary to start the server: %w", err)
	}
	env := benchServerEnv(os.Environ(), storage)
	first := filepath.Join(dir, "server1")
	initCmd := exec.CommandContext(ctx, exe, "init", "--data-dir", first) // #nosec G204 -- runs this same binary (os.Executable) as the server to measure
	initCmd.Env = env
	var stdout, stderr bytes.Buffer
	initCmd.Stdout, initCmd.Stderr = &stdout, &stderr
	if err := initCmd.Run(); err != nil {
		return nil, "", fmt.Errorf("tokenward init: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	_, token, ok := strings.Cut(strings.TrimSpace(stdout.String()), "TOKENWARD_TOKEN=")
	if !ok {
		return nil, "", errors.New("tokenward init printed no admin token")
	}
	var servers []*benchServer
	for i := range n {
		data := first
		if i > 0 {
			data = filepath.Join(dir, fmt.Sprintf("server%d", i+1))
			if err := copyKeys(first, data); err != nil {
				return servers, "", err
			}
		}
		s, err := startBenchServer(ctx, exe, env, data)
		if s != nil {
			servers = append(servers, s)
		}
		if err != nil {
			return servers, "", fmt.Errorf("server %d of %d: %w", i+1, n, err)
		}
	}
	return servers, token, nil
}

// benchServerEnv is environ without TOKENWARD_ variables, so the user's own
// server, token or key cannot reach the throwaway install, plus the
// storage URL when there is one.
func benchServerEnv(environ []string, storage string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "TOKENWARD_") {
			env = append(env, kv)
		}
	}
	if storage != "" {
		env = append(env, "TOKENWARD_STORAGE="+storage)
	}
	return env
}

// copyKeys makes data, a second server's data directory, with the first
// one's master key and audit key (0600): servers of one install share both.
func copyKeys(from, data string) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	for _, name := range []string{keyFileName, "audit.key"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if errors.Is(err, os.ErrNotExist) && name != keyFileName {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil { // #nosec G703 -- the names are the fixed key file names; data is a directory this command made
			return err
		}
	}
	return nil
}

// startBenchServer starts `tokenward server` on data and a free loopback
// port, and waits until it prints its address. Its log goes to a file in
// data, whose end an error quotes.
func startBenchServer(ctx context.Context, exe string, env []string, data string) (*benchServer, error) {
	s := &benchServer{logPath: filepath.Join(data, "server.log")}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()                                                                                   // the child holds its own descriptor
	s.cmd = exec.Command(exe, "server", "--data-dir", data, "--addr", "127.0.0.1:0", "--log-level", "warn") // #nosec G204 -- runs this same binary (os.Executable) as the server to measure
	s.cmd.Env = env
	s.cmd.Stderr = logFile
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "TOKENWARD_ADDR="); ok {
				addr <- a
				break
			}
		}
		close(addr)
		io.Copy(io.Discard, out)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case a, ok := <-addr:
		if ok {
			s.addr = a
			return s, nil
		}
		s.stop()
		return nil, fmt.Errorf("the server exited before serving: %s", s.logTail())
	case <-timeout.C:
		s.stop()
		return nil, fmt.Errorf("the server did not serve within 60s: %s", s.logTail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// logTail is the end of the server's log, for an error. The server logs
// no secret, token or database password (docs/security.md).
func (s *benchServer) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop asks the server to shut down and waits for it, killing it after 10s.
func (s *benchServer) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
