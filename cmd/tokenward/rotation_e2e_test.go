//go:build !tokenward_client

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/webhook"
)

// rotEnv is a real data directory and a real server process that tests
// start, kill and restart.
type rotEnv struct {
	t     *testing.T
	dir   string
	addr  string
	port  int
	token string
	cmd   *exec.Cmd
	logs  *syncBuf
	exit  chan error
	// args are extra server flags.
	args []string
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newRotEnv(t *testing.T) *rotEnv {
	t.Helper()
	return initAt(t, t.TempDir())
}

// start runs the server with extra environment variables and waits until
// it answers.
func (e *rotEnv) start(env ...string) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), "server", "--data-dir", filepath.Join(e.dir, "data"),
		"--addr", fmt.Sprintf("127.0.0.1:%d", e.port), "--rotation-interval", "100ms", "--rotation-retry-backoff", "50ms", "--log-level", "debug")
	cmd.Args = append(cmd.Args, e.args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr, cmd.Stdout = e.logs, io.Discard
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd, e.exit = cmd, make(chan error, 1)
	go func() { e.exit <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(e.addr + "/v1/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-e.exit:
			e.exit <- err
			e.t.Fatalf("server exited at start: %v\n%s", err, e.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.t.Fatalf("server did not come up:\n%s", e.logs)
}

// waitExit waits for the server to die by itself (a crash point).
func (e *rotEnv) waitExit() error {
	e.t.Helper()
	select {
	case err := <-e.exit:
		e.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		e.t.Fatalf("server did not exit")
		return nil
	}
}

func (e *rotEnv) stop() {
	if e.cmd != nil {
		e.cmd.Process.Kill()
		<-e.exit
		e.cmd = nil
	}
}

// cli runs the real binary as a client; stdin may be "".
func (e *rotEnv) cli(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), args...)
	cmd.Env = append(os.Environ(), "TOKENWARD_ADDR="+e.addr, "TOKENWARD_TOKEN="+e.token, "HOME="+e.dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (e *rotEnv) mustCLI(stdin string, args ...string) string {
	e.t.Helper()
	out, errs, err := e.cli(stdin, args...)
	if err != nil {
		e.t.Fatalf("tokenward %s: %v\n%s%s\nserver log:\n%s", strings.Join(args, " "), err, out, errs, e.logs)
	}
	return out
}

func (e *rotEnv) history(secret string) []rotate.Rotation {
	e.t.Helper()
	var h []rotate.Rotation
	if err := json.Unmarshal([]byte(e.mustCLI("", "rotation", "history", secret, "-o", "json")), &h); err != nil {
		e.t.Fatal(err)
	}
	return h
}

// waitStep polls until the secret's newest rotation is at step.
func (e *rotEnv) waitStep(secret string, step rotate.Step) rotate.Rotation {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h := e.history(secret)
		if len(h) > 0 && h[0].Step == step {
			return h[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: rotation did not reach %s: %+v\nserver log:\n%s", secret, step, h, e.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noLeak fails if any file under the data directory, or the server log,
// holds value in plain text, base64 or hex.
func (e *rotEnv) noLeak(values ...string) {
	e.t.Helper()
	for _, v := range values {
		for _, form := range leakForms(v) {
			if strings.Contains(e.logs.String(), form) {
				e.t.Fatalf("the server log holds a value (%.6q...)", form)
			}
			filepath.Walk(filepath.Join(e.dir, "data"), func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() {
					return err
				}
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(form)) {
					e.t.Fatalf("%s holds a value (%.6q...)", p, form)
				}
				return nil
			})
		}
	}
}

// execRotator writes a rotator program (sh, no values in argv) that logs
// each action to log and prints a fresh value for create.
func execRotator(t *testing.T, dir string) (prog, log string) {
	t.Helper()
	prog, log = filepath.Join(dir, "rotator.sh"), filepath.Join(dir, "rotator.log")
	script := `#!/bin/sh
in=$(cat)
action=$(printf '%s' "$in" | sed -n 's/.*"action":"\([a-z]*\)".*/\1/p')
echo "$action" >> "$1"
if [ "$action" = create ]; then
	printf 'exec-value-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
fi
`
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, log
}

// TestRotationSurvivesServerCrashAtEveryStep kills the real server process
// (SIGKILL, from inside, at a chosen point) during a rotation by the exec
// rotator, restarts it, and checks that the rotation completes once, with
// CURRENT the new value, nothing lost and no second value made upstream.
func TestRotationSurvivesServerCrashAtEveryStep(t *testing.T) {
	e := newRotEnv(t)
	prog, log := execRotator(t, e.dir)
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	points := []string{"pending:stored", "after:create", "after:set", "after:test", "promote:done", "after:finish", "after:revoke"}
	initial := map[string]string{}
	for i, p := range points {
		name := fmt.Sprintf("payments/prod/KEY_%d", i)
		initial[name] = fmt.Sprintf("initial-%d-9f8e7d6c5b4a", i)
		e.mustCLI(initial[name], "secret", "set", name)
		e.mustCLI("", "rotation", "set", name, "--every", "30d", "--rotator", "exec", "--config", `command=`+prog+`,args=["`+log+`"]`)
		_ = p
	}
	e.stop()
	for i, point := range points {
		name := fmt.Sprintf("payments/prod/KEY_%d", i)
		t.Run(point, func(t *testing.T) {
			os.Remove(log)
			e.start(crashEnv + "=" + point)
			if _, _, err := e.cli("", "rotate", "now", name); err == nil {
				t.Fatalf("rotate now: got success; want the server to die at %s", point)
			}
			if err := e.waitExit(); err == nil {
				t.Fatalf("server exited cleanly; want killed at %s", point)
			}
			e.start() // no crash point: resume
			r := e.waitStep(name, rotate.StepDone)
			e.stop()
			e.start()
			cur := e.mustCLI("", "secret", "get", name)
			if !strings.HasPrefix(cur, "exec-value-") {
				t.Fatalf("CURRENT after the crash: got %.12q...; want the rotator's new value", cur)
			}
			if _, _, err := e.cli("", "secret", "get", name, "--version", "previous"); err == nil {
				t.Fatalf("PREVIOUS still readable after revoke")
			}
			var versions []map[string]any
			json.Unmarshal([]byte(e.mustCLI("", "secret", "history", name, "-o", "json")), &versions)
			if len(versions) != 2 || r.PendingVersion != 2 || r.CurrentVersion != 1 {
				t.Fatalf("got %d versions, rotation %d→%d; want 2 versions, 1→2 (the crash made no second value)", len(versions), r.CurrentVersion, r.PendingVersion)
			}
			if h := e.history(name); len(h) != 1 {
				t.Fatalf("got %d rotations; want exactly 1", len(h))
			}
			b, _ := os.ReadFile(log)
			calls := strings.Fields(string(b))
			creates, revokes := 0, 0
			for _, c := range calls {
				switch c {
				case "create":
					creates++
				case "revoke":
					revokes++
				}
			}
			// Only a crash between making a value and storing it may call
			// create twice; we crash after storing, so once.
			if creates != 1 || revokes < 1 {
				t.Fatalf("rotator calls %v: got %d creates, %d revokes; want 1 create and a revoke", calls, creates, revokes)
			}
			e.noLeak(initial[name], cur)
			e.stop()
		})
	}
}

// TestWebhookRotatorThroughServer rotates with the webhook rotator against
// the test's receiver, which verifies every request's signature.
func TestWebhookRotatorThroughServer(t *testing.T) {
	const hmacKey = "whsec-test-key-0123456789abcdef"
	var mu sync.Mutex
	var actions []string
	var bad int
	n := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify([]byte(hmacKey), r.Header, body, time.Now(), time.Minute); err != nil {
			bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req rotate.WebhookRequest
		json.Unmarshal(body, &req)
		actions = append(actions, req.Action)
		if req.Action == "create" {
			n++
			json.NewEncoder(w).Encode(rotate.WebhookResponse{Value: fmt.Sprintf("webhook-issued-%d-abcdef", n)})
		}
	}))
	defer recv.Close()
	e := newRotEnv(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e.args = []string{"--metrics-addr", metrics}
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	e.mustCLI(hmacKey, "secret", "set", "payments/prod/WEBHOOK_KEY")
	e.mustCLI("initial-webhook-value-42", "secret", "set", "payments/prod/PARTNER_KEY")
	e.mustCLI("", "rotation", "set", "payments/prod/PARTNER_KEY", "--every", "30d", "--grace", "2s", "--rotator", "webhook",
		"--config", "url="+recv.URL+"/rotate,key_secret=payments/prod/WEBHOOK_KEY,test=true")
	_, errs, err := e.cli("", "rotate", "now", "payments/prod/PARTNER_KEY")
	if err != nil || !strings.Contains(errs, "PREVIOUS") {
		t.Fatalf("rotate now: %v %s", err, errs)
	}
	if got := e.mustCLI("", "secret", "get", "payments/prod/PARTNER_KEY"); got != "webhook-issued-1-abcdef" {
		t.Fatalf("CURRENT: got %q; want the receiver's value", got)
	}
	if got := e.mustCLI("", "secret", "get", "payments/prod/PARTNER_KEY", "--version", "previous"); got != "initial-webhook-value-42" {
		t.Fatalf("PREVIOUS during grace: got %q; want the old value", got)
	}
	e.waitStep("payments/prod/PARTNER_KEY", rotate.StepDone) // grace ends: revoke
	mu.Lock()
	got := strings.Join(actions, ",")
	mu.Unlock()
	if got != "create,test,revoke" || bad != 0 {
		t.Fatalf("receiver saw %q (%d bad signatures); want create,test,revoke, all signed", got, bad)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tokenward_rotations{state="done"} 1`, `tokenward_rotations{state="in_flight"} 0`, "tokenward_rotation_step_failures_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	e.noLeak(hmacKey, "initial-webhook-value-42", "webhook-issued-1-abcdef")
}

// TestTokenwardRotatorThroughServer rotates a stored tokenward service
// token: the successor works at once, the old one through grace, then it
// is revoked.
func TestTokenwardRotatorThroughServer(t *testing.T) {
	e := newRotEnv(t)
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	old := strings.TrimSpace(e.mustCLI("", "token", "create", "--name", "deploy-bot", "--grant", "read:payments/prod/*"))
	e.mustCLI(old, "secret", "set", "payments/prod/DEPLOY_TOKEN")
	e.mustCLI("", "rotation", "set", "payments/prod/DEPLOY_TOKEN", "--every", "30d", "--grace", "2s", "--rotator", "tokenward")
	e.mustCLI("", "rotate", "now", "payments/prod/DEPLOY_TOKEN")
	next := e.mustCLI("", "secret", "get", "payments/prod/DEPLOY_TOKEN")
	if next == old || !strings.HasPrefix(next, "tws_") {
		t.Fatalf("CURRENT after rotation: got a %.4q token equal to the old: %v", next, next == old)
	}
	self := func(tok string) error {
		cmd := exec.Command(filepath.Join(binDir, "tokenward"), "secret", "list", "payments/prod")
		cmd.Env = append(os.Environ(), "TOKENWARD_ADDR="+e.addr, "TOKENWARD_TOKEN="+tok)
		return cmd.Run()
	}
	if err := self(next); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}
	if err := self(old); err != nil {
		t.Fatalf("the old token stopped working during grace: %v", err)
	}
	e.waitStep("payments/prod/DEPLOY_TOKEN", rotate.StepDone)
	if err := self(old); err == nil {
		t.Fatalf("the old token works after grace; want it revoked")
	}
	if err := self(next); err != nil {
		t.Fatalf("the new token stopped working: %v", err)
	}
	e.noLeak(old, next)
}

// TestPostgresRotatorThroughServer rotates a PostgreSQL role's password on
// a real throwaway cluster: the new credential logs in, the old one too
// during grace, and not after.
func TestPostgresRotatorThroughServer(t *testing.T) {
	pg := pgtest.Start(t)
	e := newRotEnv(t)
	e.start()
	e.mustCLI("", "project", "create", "payments", "--envs", "prod")
	admin := pg.URL(pg.User, pg.Password, "postgres")
	e.mustCLI(admin, "secret", "set", "payments/prod/DB_ADMIN_URL")
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE ROLE app NOLOGIN`, `CREATE ROLE app_a LOGIN PASSWORD 'initial-pg-password-1' IN ROLE app`} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(t.Context())
	base := strings.Replace(pg.URL("x", "y", "postgres"), "x:y@", "", 1)
	initial := pg.URL("app_a", "initial-pg-password-1", "postgres")
	e.mustCLI(initial, "secret", "set", "payments/prod/DB_URL")
	e.mustCLI("", "rotation", "set", "payments/prod/DB_URL", "--every", "30d", "--grace", "3s", "--rotator", "postgres",
		"--config", "dsn_secret=payments/prod/DB_ADMIN_URL,role=app,url="+base)
	e.mustCLI("", "rotate", "now", "payments/prod/DB_URL")
	next := e.mustCLI("", "secret", "get", "payments/prod/DB_URL")
	login := func(u string) error {
		c, err := pgx.Connect(t.Context(), u)
		if err == nil {
			c.Close(t.Context())
		}
		return err
	}
	if err := login(next); err != nil {
		t.Fatalf("the new credential does not log in: %v", err)
	}
	if err := login(initial); err != nil {
		t.Fatalf("the old credential stopped during grace: %v", err)
	}
	e.waitStep("payments/prod/DB_URL", rotate.StepDone)
	if err := login(initial); err == nil {
		t.Fatalf("the old credential logs in after grace")
	}
	if err := login(next); err != nil {
		t.Fatalf("the new credential stopped: %v", err)
	}
	e.noLeak("initial-pg-password-1", pg.Password)
}

// cmdRotWait SECRET STEP waits until the secret's newest rotation is at
// STEP (the scheduler runs on its own clock).
func cmdRotWait(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: rotwait SECRET STEP")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command(filepath.Join(binDir, "tokenward"), "rotation", "history", args[0], "-o", "json")
		cmd.Env = append(os.Environ(), "TOKENWARD_ADDR="+ts.Getenv("TOKENWARD_ADDR"), "TOKENWARD_TOKEN="+ts.Getenv("TOKENWARD_TOKEN"))
		out, err := cmd.Output()
		var h []rotate.Rotation
		if err == nil && json.Unmarshal(out, &h) == nil && len(h) > 0 && string(h[0].Step) == args[1] {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("%s did not reach step %s", args[0], args[1])
}
