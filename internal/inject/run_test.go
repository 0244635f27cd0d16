package inject

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	childOnce sync.Once
	childDir  string
	childPath string
	childErr  error
)

// testChild builds the helper child program once per test process, on
// first use, so fuzz workers that never run a child do not build it.
func testChild(t testing.TB) string {
	t.Helper()
	childOnce.Do(func() {
		childDir, childErr = os.MkdirTemp("", "inject-testchild-")
		if childErr != nil {
			return
		}
		childPath = filepath.Join(childDir, "testchild")
		out, err := exec.Command("go", "build", "-o", childPath, "./internal/testchild").CombinedOutput()
		if err != nil {
			childErr = fmt.Errorf("build testchild: %v\n%s", err, out)
		}
	})
	if childErr != nil {
		t.Fatal(childErr)
	}
	return childPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if childDir != "" {
		os.RemoveAll(childDir)
	}
	os.Exit(code)
}

// syncBuffer is a goroutine-safe buffer that can wait for some text.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	ch chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{ch: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer holds sub (up to a generous deadline, which
// only a broken runner reaches).
func (s *syncBuffer) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.String(), sub) {
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("waiting for %q: got %q", sub, s.String())
		}
	}
}

var runSecrets = map[string]string{
	"API_KEY":    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
	"DB_URL":     "postgres://app:pa$$w'rd\"@db:5432/app?sslmode=verify-full",
	"PEM":        "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nq8xK2mB3vR7pLw0ZcYtN\n-----END KEY-----",
	"UNICODE":    "pässwörd-✓-秘密",
	"PIN":        "42",
	"LD_PRELOAD": "/tmp/evil.so",
}

// leaks returns the values (and value lines) of secrets found in s, short
// ones excepted.
func leaks(s string, secrets map[string]string) []string {
	var found []string
	for name, v := range secrets {
		for _, part := range append(splitLines(v), v) {
			if len(part) >= DefaultMinMaskLen && strings.Contains(s, part) {
				found = append(found, name)
			}
		}
	}
	return found
}

func TestRunMasksChildOutput(t *testing.T) {
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	var warns []string
	code, err := Run(context.Background(), RunConfig{
		Command: []string{testChild(t), "print", "API_KEY", "DB_URL", "PEM", "UNICODE"},
		Secrets: runSecrets,
		Stdout:  stdout, Stderr: stderr,
		Warn: func(m string) { warns = append(warns, m) },
	})
	if err != nil || code != 0 {
		t.Fatalf("Run: got %d, %v; want 0, nil", code, err)
	}
	all := stdout.String() + stderr.String()
	if l := leaks(all, runSecrets); len(l) > 0 {
		t.Errorf("output leaks %v:\n%s", l, all)
	}
	for _, want := range []string{"raw API_KEY=***\n", "\x1b[31merr API_KEY=***\x1b[0m\n", "b64 ***\n", "url ***\n", `json {"API_KEY":"***"}`} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
	if !slices.ContainsFunc(warns, func(w string) bool { return strings.Contains(w, "not masking PIN") }) {
		t.Errorf("warnings %q; want one about PIN not being masked", warns)
	}
}

// TestRunMasksRealEncoders runs coreutils' own encoders on the injected
// values: base64 wrapping a long value at 76 columns and at 64 (openssl
// base64's width), basenc's upper-case hex, and od's bytes joined into
// lower-case hex, alone and folded at 60 columns (what xxd -p prints). Nothing of the values' encodings that
// masking promises to cover gets through.
func TestRunMasksRealEncoders(t *testing.T) {
	for _, tool := range []string{"sh", "base64", "basenc", "od", "tr", "fold"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (coreutils)", tool, err)
		}
	}
	secrets := map[string]string{
		"JWT": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvYXBpIiwiYXVkIjoidG9rZW53YXJkIn0.bm90LWEtcmVhbC1zaWduYXR1cmUtYXQtYWxs",
		"KEY": "tw_live_8c2f41d09ab3e7",
	}
	script := `printf %s "$JWT" | base64; echo "$JWT" | base64; echo "$JWT" | base64 -w 64; ` +
		`printf %s "$KEY" | basenc --base16; echo; printf %s "$KEY" | od -An -tx1 -v | tr -d ' \n'; echo; ` +
		`printf %s "$JWT" | od -An -tx1 -v | tr -d ' \n' | fold -w 60; echo`
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code, err := Run(context.Background(), RunConfig{Command: []string{"sh", "-c", script}, Secrets: secrets, Stdout: stdout, Stderr: stderr})
	if err != nil || code != 0 {
		t.Fatalf("Run: got %d, %v; want 0, nil\n%s", code, err, stderr.String())
	}
	out := stdout.String()
	var clear []string
	for _, enc := range []string{secrets["JWT"], secrets["JWT"] + "\n"} {
		b64 := base64.StdEncoding.EncodeToString([]byte(enc))
		for _, width := range []int{76, 64} {
			for i := 0; i < len(b64); i += width {
				if line := b64[i:min(i+width, len(b64))]; len(line) >= wrappedMin {
					clear = append(clear, line)
				}
			}
		}
	}
	h := hex.EncodeToString([]byte(secrets["KEY"]))
	clear = append(clear, h, strings.ToUpper(h))
	// xxd -p's lines of the long value's hex (od and fold stand in for it).
	jh := hex.EncodeToString([]byte(secrets["JWT"]))
	for i := 0; i < len(jh); i += 60 {
		if line := jh[i:min(i+60, len(jh))]; len(line) >= wrappedMin {
			clear = append(clear, line)
		}
	}
	for _, c := range clear {
		if strings.Contains(out, c) {
			t.Errorf("output holds %q in clear:\n%s", c, out)
		}
	}
	if n := strings.Count(out, Mask); n < 8 {
		t.Errorf("got %d masks; want a line of its own masked for each wrapped line and hex dump:\n%s", n, out)
	}
}

func TestRunEnvironment(t *testing.T) {
	base := []string{"HOME=/home/ci", "API_KEY=inherited", "PATH=" + os.Getenv("PATH")}
	tests := []struct {
		name string
		opt  EnvOptions
		want []string
	}{
		{"override", EnvOptions{}, []string{"API_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc", "HOME=/home/ci", "LD_PRELOAD unset"}},
		{"no override", EnvOptions{NoOverride: true}, []string{"API_KEY=inherited"}},
		{"prefix and only", EnvOptions{Prefix: "APP_", Only: []string{"API_KEY"}}, []string{"APP_API_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc", "API_KEY=inherited", "APP_UNICODE unset"}},
		{"hijack allowed", EnvOptions{Allow: []string{"LD_PRELOAD"}, Only: []string{"LD_PRELOAD", "UNICODE"}}, []string{"LD_PRELOAD=/tmp/evil.so", "UNICODE=pässwörd-✓-秘密"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := Run(context.Background(), RunConfig{
				Command: []string{testChild(t), "env", "API_KEY", "APP_API_KEY", "APP_UNICODE", "HOME", "LD_PRELOAD", "UNICODE"},
				Secrets: runSecrets, BaseEnv: base, Env: tt.opt, NoMask: true, Stdout: &out,
			})
			if err != nil || code != 0 {
				t.Fatalf("Run: got %d, %v; want 0, nil", code, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w+"\n") {
					t.Errorf("got %q; want a line %q", out.String(), w)
				}
			}
		})
	}
}

func TestBuildEnvHijackNames(t *testing.T) {
	secrets := map[string]string{"LD_PRELOAD": "x.so", "PATH": "/evil", "NODE_OPTIONS": "--require x", "DYLD_INSERT_LIBRARIES": "y", "OK": "fine", "path": "/evil2"}
	env, injected, warns, err := BuildEnv(nil, secrets, EnvOptions{Allow: []string{"NODE_OPTIONS"}})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for n := range injected {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"NODE_OPTIONS", "OK"}; !slices.Equal(got, want) {
		t.Errorf("injected %q; want %q", got, want)
	}
	if len(env) != 2 {
		t.Errorf("env %q; want 2 entries", env)
	}
	if len(warns) != 5 {
		t.Errorf("got %d warnings %q; want 5 (4 refused, 1 allowed)", len(warns), warns)
	}
	for _, n := range []string{"LD_AUDIT", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "PS4", "PROMPT_COMMAND", "GIT_SSH_COMMAND", "JAVA_TOOL_OPTIONS", "PYTHONPATH", "PYTHONSTARTUP", "PERL5OPT", "RUBYOPT", "DYLD_LIBRARY_PATH",
		"GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "LESSOPEN", "LESSCLOSE", "ACTIONS_ALLOW_UNSECURE_COMMANDS"} {
		if !IsHijackName(n) {
			t.Errorf("IsHijackName(%q) = false; want true", n)
		}
	}
	if IsHijackName("DATABASE_URL") {
		t.Errorf("IsHijackName(DATABASE_URL) = true; want false")
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script.sh")
	os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	tests := []struct {
		name     string
		cmd      []string
		want     int
		startErr bool
	}{
		{"success", []string{testChild(t), "exit", "0"}, 0, false},
		{"child code", []string{testChild(t), "exit", "3"}, 3, false},
		{"not found in PATH", []string{"tokenward-no-such-command"}, 127, true},
		{"not found by path", []string{filepath.Join(dir, "missing")}, 127, true},
		{"not executable", []string{notExec}, 126, true},
		{"directory", []string{dir}, 126, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := Run(context.Background(), RunConfig{Command: tt.cmd, Secrets: runSecrets})
			if code != tt.want {
				t.Errorf("exit code: got %d; want %d (err %v)", code, tt.want, err)
			}
			var se *StartError
			if got := errors.As(err, &se); got != tt.startErr {
				t.Errorf("got err %v; want a *StartError: %v", err, tt.startErr)
			}
		})
	}
}

func TestRunForwardsSignals(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep not found: %v", err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			sigs := make(chan os.Signal, 1)
			sigs <- sig // read only once the child has started
			code, err := Run(context.Background(), RunConfig{
				Command: []string{sleep, "60"}, Secrets: runSecrets, Signals: sigs, Dir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := 128 + int(sig); code != want {
				t.Errorf("got exit code %d; want %d", code, want)
			}
		})
	}
}

// TestRunRealSignalRemovesMount sends SIGTERM to this very process, as a CI
// runner cancelling a job would, and checks that the child got it and that
// the mount file is gone.
func TestRunRealSignalRemovesMount(t *testing.T) {
	mount := filepath.Join(t.TempDir(), "secrets.env")
	out := newSyncBuffer()
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := Run(context.Background(), RunConfig{
			Command: []string{testChild(t), "mount", mount, "dotenv"}, Secrets: runSecrets,
			MountPath: mount, Stdout: out, NoMask: true, Env: EnvOptions{Only: []string{"API_KEY", "PEM"}},
		})
		res <- result{code, err}
	}()
	out.waitFor(t, "ready")
	sum := sha256.Sum256([]byte(runSecrets["PEM"]))
	for _, want := range []string{"mode=600\n", "API_KEY sha256=", "PEM sha256=" + hex.EncodeToString(sum[:8])} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("child saw %q; want %q", out.String(), want)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	r := <-res
	if r.err != nil || r.code != 128+int(syscall.SIGTERM) {
		t.Errorf("Run: got %d, %v; want %d, nil", r.code, r.err, 128+int(syscall.SIGTERM))
	}
	if _, err := os.Stat(mount); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount file after the run: stat err %v; want it removed", err)
	}
}

func TestRunMountFile(t *testing.T) {
	for _, format := range []Format{FormatDotenv, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			mount := filepath.Join(t.TempDir(), "secrets")
			var out bytes.Buffer
			code, err := Run(context.Background(), RunConfig{
				Command: []string{testChild(t), "mount", mount, string(format), "exit"}, Secrets: runSecrets,
				MountPath: mount, MountFormat: format, Stdout: &out,
			})
			if err != nil || code != 0 {
				t.Fatalf("Run: got %d, %v; want 0, nil (output %q)", code, err, out.String())
			}
			if !strings.Contains(out.String(), "mode=600\n") || !strings.Contains(out.String(), "UNICODE sha256=") {
				t.Errorf("child saw %q; want a 0600 file with UNICODE", out.String())
			}
			if strings.Contains(out.String(), "LD_PRELOAD") {
				t.Errorf("child saw %q; want no refused name in the mount file", out.String())
			}
			if _, err := os.Stat(mount); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount file after the run: stat err %v; want it removed", err)
			}
		})
	}
	t.Run("existing file kept", func(t *testing.T) {
		mount := filepath.Join(t.TempDir(), "secrets")
		os.WriteFile(mount, []byte("mine"), 0o600)
		_, err := Run(context.Background(), RunConfig{Command: []string{testChild(t), "exit", "0"}, Secrets: runSecrets, MountPath: mount})
		if err == nil {
			t.Fatal("got nil error; want a refusal to replace an existing file")
		}
		if b, _ := os.ReadFile(mount); string(b) != "mine" {
			t.Errorf("existing file now %q; want it untouched", b)
		}
	})
}

func TestRunStdinAndPrompt(t *testing.T) {
	t.Run("cat", func(t *testing.T) {
		var out bytes.Buffer
		in := "line one " + runSecrets["API_KEY"] + "\nline two\n"
		code, err := Run(context.Background(), RunConfig{Command: []string{testChild(t), "cat"}, Secrets: runSecrets, Stdin: strings.NewReader(in), Stdout: &out})
		if err != nil || code != 0 {
			t.Fatalf("Run: got %d, %v", code, err)
		}
		if got, want := out.String(), "line one ***\nline two\n"; got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	})
	t.Run("prompt shows before the answer", func(t *testing.T) {
		out := newSyncBuffer()
		pr, pw := io.Pipe()
		res := make(chan error, 1)
		go func() {
			_, err := Run(context.Background(), RunConfig{Command: []string{testChild(t), "prompt"}, Secrets: runSecrets, Stdin: pr, Stdout: out})
			res <- err
		}()
		out.waitFor(t, "Password: ") // would hang if the redactor held the line
		io.WriteString(pw, "answer\n")
		pw.Close()
		if err := <-res; err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "Password: got 7 bytes\n"; got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	})
}

func TestRunWatchRestarts(t *testing.T) {
	out := newSyncBuffer()
	watch := make(chan map[string]string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	var warnMu sync.Mutex
	var warns []string
	go func() {
		code, err := Run(ctx, RunConfig{
			Command: []string{testChild(t), "trap"}, Secrets: map[string]string{"GEN": "first-value"},
			Watch: watch, Stdout: out, NoMask: true,
			Warn: func(m string) { warnMu.Lock(); warns = append(warns, m); warnMu.Unlock() },
		})
		res <- result{code, err}
	}()
	out.waitFor(t, "ready first-value\n")
	watch <- map[string]string{"GEN": "second-value"}
	out.waitFor(t, "ready second-value\n")
	if !strings.Contains(out.String(), "stopping first-value\n") {
		t.Errorf("got %q; want the first child stopped gracefully", out.String())
	}
	cancel()
	r := <-res
	if r.code != 0 || !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run: got %d, %v; want 0, context.Canceled", r.code, r.err)
	}
	warnMu.Lock()
	defer warnMu.Unlock()
	if !slices.ContainsFunc(warns, func(w string) bool { return strings.Contains(w, "restarting") }) {
		t.Errorf("warnings %q; want a restart notice", warns)
	}
}

func TestRunStopKillsAfterTimeout(t *testing.T) {
	out := newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan int, 1)
	go func() {
		code, _ := Run(ctx, RunConfig{Command: []string{testChild(t), "ignore-term"}, Secrets: runSecrets, Stdout: out, StopTimeout: 200 * time.Millisecond})
		res <- code
	}()
	out.waitFor(t, "ready")
	cancel()
	if got, want := <-res, 128+int(syscall.SIGKILL); got != want {
		t.Errorf("got exit code %d; want %d", got, want)
	}
}

// TestNoValueInErrorsOrWarnings drives every error and warning path of the
// package with secret values in play and checks none of them shows a value.
func TestNoValueInErrorsOrWarnings(t *testing.T) {
	secrets := maps2(runSecrets, map[string]string{"BAD-NAME": "bad-name-value-123", "NUL": "nul\x00value-456"})
	var msgs []string
	warn := func(m string) { msgs = append(msgs, m) }
	add := func(err error) {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	_, err := Run(context.Background(), RunConfig{Command: []string{"tokenward-no-such-command", runSecrets["API_KEY"]}, Secrets: runSecrets, Warn: warn})
	add(err)
	_, err = Run(context.Background(), RunConfig{Command: []string{testChild(t), "exit", "0"}, Secrets: secrets, Warn: warn})
	add(err)
	_, err = Run(context.Background(), RunConfig{Command: []string{testChild(t), "exit", "0"}, Secrets: runSecrets, Warn: warn, Env: EnvOptions{Only: []string{"NOPE"}, Allow: []string{"LD_PRELOAD"}}})
	add(err)
	_, err = Run(context.Background(), RunConfig{Command: []string{testChild(t), "exit", "0"}, Secrets: runSecrets, Warn: warn, Env: EnvOptions{Prefix: runSecrets["API_KEY"]}})
	add(err)
	_, _, w, err := BuildEnv(nil, runSecrets, EnvOptions{Allow: []string{"LD_PRELOAD"}})
	msgs = append(msgs, w...)
	add(err)
	for _, f := range Formats {
		_, err := Encode(f, map[string]string{"NUL": "nul\x00value-456"})
		add(err)
		_, err = Encode(f, runSecrets)
		add(err)
		_, err = Encode(f, map[string]string{"SP": "  spaced-value-789 "})
		add(err)
		_, err = Decode(f, []byte("X=\"unterminated-value-1011\nY='also-value-1213\n{\"A\": 1234567}\n"))
		add(err)
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	add(SaveSnapshot(snap, "tws_token-value-1415", []string{"payments/prod"}, runSecrets, now))
	_, err = LoadSnapshot(snap, "tws_wrong-token-1617", time.Hour, now)
	add(err)
	_, err = LoadSnapshot(snap, "tws_token-value-1415", time.Minute, now.Add(time.Hour))
	add(err)
	if len(msgs) < 10 {
		t.Fatalf("got %d messages; want the error paths exercised: %q", len(msgs), msgs)
	}
	all := strings.Join(msgs, "\n")
	values := maps2(secrets, map[string]string{"A": "value-1011", "B": "value-1213", "C": "1234567", "D": "spaced-value-789", "E": "value-456", "T1": "token-value-1415", "T2": "wrong-token-1617"})
	if l := leaks(all, values); len(l) > 0 {
		t.Errorf("messages leak %v:\n%s", l, all)
	}
}

func maps2(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  RunConfig
	}{
		{"no command", RunConfig{}},
		{"bad mount format", RunConfig{Command: []string{"true"}, MountPath: "x", MountFormat: FormatShell}},
		{"bad prefix", RunConfig{Command: []string{"true"}, Env: EnvOptions{Prefix: "1-"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, err := Run(context.Background(), tt.cfg); err == nil || code != 0 {
				t.Errorf("got %d, %v; want 0 and an error", code, err)
			}
		})
	}
}
