//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/rotate"
)

// TestCanariesNeverEscape seeds unique canary secret values and tokens,
// drives the real server and CLI through successes and failures (wrong
// grants, bad input, a value too large, a revoked and an unknown token, a
// rotation whose rotator fails while echoing what it was given, an OIDC
// login with a forged JWT), with debug logging, the audit file sink and the
// metrics listener on. Then it greps every surface a value could escape to
// — the server log, CLI stderr, masked run output, error bodies, the audit
// file, the audit export, report, anomalies, the metrics page and the
// database (SQLite files; PostgreSQL tables as text) — for every canary in
// plain text, base64 and hex.
func TestCanariesNeverEscape(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		e := newRotEnv(t)
		c := runCanaryScenario(t, e)
		c.checkFiles(filepath.Join(e.dir, "data"))
		c.check()
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Shared(t)
		dbURL := pg.NewDatabase(t)
		e := &rotEnv{t: t, dir: t.TempDir(), logs: &syncBuf{}}
		out, errs, err := e.cli("", "init", "--data-dir", filepath.Join(e.dir, "data"), "--storage", dbURL)
		if err != nil {
			t.Fatalf("init --storage: %v\n%s", err, errs)
		}
		_, e.token, _ = strings.Cut(strings.TrimSpace(out), "TOKENWARD_TOKEN=")
		e.port = freePort(t)
		e.addr = fmt.Sprintf("http://127.0.0.1:%d", e.port)
		e.args = []string{"--storage", dbURL, "--log-format", "json"} // the other log format
		t.Cleanup(e.stop)
		c := runCanaryScenario(t, e)
		if u, err := url.Parse(dbURL); err == nil {
			if pw, ok := u.User.Password(); ok {
				c.secret("database password", pw)
			}
		}
		c.surface("init stderr", errs)
		c.surface("postgres tables", dumpTables(t, dbURL))
		c.checkFiles(filepath.Join(e.dir, "data"))
		c.check()
	})
}

// canaries holds the values that must not escape and the surfaces they
// must not escape to.
type canaries struct {
	t        *testing.T
	values   map[string]string // what → value
	surfaces map[string]string // where → content
	order    []string
}

func (c *canaries) secret(what, v string) string {
	c.values[what] = v
	return v
}

// surface records content to grep; several calls with one name append.
func (c *canaries) surface(where, content string) {
	if _, ok := c.surfaces[where]; !ok {
		c.order = append(c.order, where)
	}
	c.surfaces[where] += content + "\n"
}

// canaryForms are the forms a canary must not take anywhere: leakForms
// (plain, base64 in every alphabet, URL and JSON escapes) and hex.
func canaryForms(v string) []string {
	return append(leakForms(v), hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))))
}

func (c *canaries) check() {
	c.t.Helper()
	if len(c.values) == 0 || len(c.surfaces) == 0 {
		c.t.Fatalf("nothing checked: %d canaries, %d surfaces", len(c.values), len(c.surfaces))
	}
	for what, v := range c.values {
		forms := canaryForms(v)
		for _, where := range c.order {
			for _, f := range forms {
				if i := strings.Index(c.surfaces[where], f); i >= 0 {
					s := c.surfaces[where]
					c.t.Errorf("%s holds the %s (as %.8q...) near:\n%s", where, what, f, s[max(0, i-200):min(len(s), i+len(f)+200)])
					break
				}
			}
		}
	}
}

// checkFiles greps every file under dir (the database, its WAL and
// journal, keys, snapshots) as raw bytes.
func (c *canaries) checkFiles(dir string) {
	c.t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			c.t.Fatal(err)
		}
		n++
		c.surface("file "+strings.TrimPrefix(p, dir+"/"), string(b))
		return nil
	})
	if n == 0 {
		c.t.Fatalf("no files under %s", dir)
	}
}

// rnd is 26 random base32 characters: with a 4-byte prefix a canary is
// 30 bytes, a multiple of 3, so a value that begins with it begins with its
// base64 too.
func rnd() string { return rand.Text() }

func runCanaryScenario(t *testing.T, e *rotEnv) *canaries {
	t.Helper()
	c := &canaries{t: t, values: map[string]string{}, surfaces: map[string]string{}}
	c.secret("admin token", e.token)
	metricsPort := freePort(t)
	auditFile := filepath.Join(e.dir, "audit.jsonl")
	e.args = append(e.args, "--audit-file", auditFile, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort))
	e.start()

	// The change events stream, read from the start to the end.
	evCtx, cancelEvents := context.WithCancel(context.Background())
	defer cancelEvents()
	events, eventsDone := &syncBuf{}, make(chan struct{})
	evReq, _ := http.NewRequestWithContext(evCtx, "GET", e.addr+"/v1/events/stream", nil)
	evReq.Header.Set("Authorization", "Bearer "+e.token)
	evResp, err := http.DefaultClient.Do(evReq)
	if err != nil || evResp.StatusCode != 200 {
		t.Fatalf("events stream: %v %v", err, evResp)
	}
	go func() {
		defer close(eventsDone)
		io.Copy(events, evResp.Body)
		evResp.Body.Close()
	}()

	// cli runs a command and keeps its stderr (always) and its stdout
	// (when it is not meant to deliver a value) as surfaces.
	cli := func(wantOK, keepStdout bool, stdin string, args ...string) string {
		t.Helper()
		out, errs, err := e.cli(stdin, args...)
		if wantOK && err != nil {
			t.Fatalf("tokenward %s: %v\n%s%s\nserver log:\n%s", strings.Join(args, " "), err, out, errs, e.logs)
		}
		if !wantOK && err == nil {
			t.Fatalf("tokenward %s: got success; want a failure\n%s", strings.Join(args, " "), out)
		}
		c.surface("stderr of "+args[0], errs)
		if keepStdout {
			c.surface("stdout of "+args[0], out)
		}
		return out
	}
	// api sends one request; the body of every answer is a surface.
	api := func(method, path, token, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, e.addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		c.surface(fmt.Sprintf("body of %s %s (%d)", method, path, resp.StatusCode), string(b))
		return resp.StatusCode
	}
	writeFile := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}

	cli(true, true, "", "project", "create", "payments", "--envs", "prod,dev")
	apiKey := c.secret("secret value API_KEY", "cnA_"+rnd())
	dbPass := c.secret("secret value DB_PASSWORD", "cnB_"+rnd())
	cli(true, true, apiKey, "secret", "set", "payments/prod/API_KEY", "--owner", "team-payments")
	cli(true, true, dbPass, "secret", "set", "payments/prod/DB_PASSWORD")
	cli(true, true, dbPass+"-v2", "secret", "set", "payments/prod/DB_PASSWORD")
	if got := strings.TrimSpace(cli(true, false, "", "secret", "get", "payments/prod/API_KEY")); got != apiKey {
		t.Fatalf("secret get: got %.8q...; want the canary", got)
	}
	cli(true, true, "", "secret", "list", "payments/prod", "-o", "json")
	cli(true, true, "", "secret", "history", "payments/prod/DB_PASSWORD")
	cli(true, true, "", "secret", "rollback", "payments/prod/DB_PASSWORD", "--to", "1")

	// Tokens: a scoped one, one revoked, one never issued.
	scoped := c.secret("scoped token", strings.TrimSpace(cli(true, false, "", "token", "create", "--name", "bot", "--grant", "read:payments/prod/*", "--ttl", "1h")))
	revoked := c.secret("revoked token", strings.TrimSpace(cli(true, false, "", "token", "create", "--name", "gone", "--grant", "read:payments/prod/*", "--ttl", "1h")))
	cli(true, true, "", "token", "revoke", "gone")
	unknown := c.secret("unknown token", "tws_"+rnd()+rnd()[:23])
	cli(true, true, "", "token", "list")
	scopedFile := writeFile("scoped.token", scoped, 0o600)
	revokedFile := writeFile("revoked.token", revoked, 0o600)
	unknownFile := writeFile("unknown.token", unknown, 0o600)

	// Wrong grants, a revoked and an unknown token: refused, nothing echoed.
	cli(false, true, "", "secret", "get", "payments/dev/API_KEY", "--token-file", scopedFile)
	cli(false, true, apiKey+"-write", "secret", "set", "payments/prod/API_KEY", "--token-file", scopedFile)
	cli(false, true, "", "token", "create", "--name", "wider", "--grant", "read:payments/*/*", "--token-file", scopedFile)
	cli(false, true, "", "secret", "get", "payments/prod/API_KEY", "--token-file", revokedFile)
	cli(false, true, "", "secret", "get", "payments/prod/API_KEY", "--token-file", unknownFile)
	api("GET", "/v1/secrets/payments/prod/API_KEY", revoked, "")
	api("GET", "/v1/secrets/payments/prod/API_KEY", unknown, "")
	api("GET", "/v1/secrets/payments/dev/API_KEY", scoped, "")
	badBody := c.secret("value in a refused write", "cnC_"+rnd())
	api("PUT", "/v1/secrets/payments/prod/API_KEY", scoped, `{"value":"`+badBody+`"}`)

	// Bad input carrying a value: a bad name, broken JSON, an unknown
	// field, a wrong type, a stale --if-version, a value too large.
	cli(false, true, badBody, "secret", "set", "payments/prod/bad name!")
	cli(false, true, badBody, "secret", "set", "payments/prod/API_KEY", "--if-version", "7")
	api("PUT", "/v1/secrets/payments/prod/BROKEN", e.token, `{"value":"`+badBody)
	api("PUT", "/v1/secrets/payments/prod/BROKEN", e.token, `{"value":"`+badBody+`","valeu":"`+badBody+`"}`)
	api("PUT", "/v1/secrets/payments/prod/BROKEN", e.token, `{"value":["`+badBody+`"]}`)
	api("PUT", "/v1/secrets/payments/prod/bad%20name", e.token, `{"value":"`+badBody+`"}`)
	api("PUT", "/v1/secrets/payments/nope/API_KEY", e.token, `{"value":"`+badBody+`"}`)
	big := c.secret("value too large", "cnD_"+rnd())
	huge := strings.Repeat(big, (64<<10)/len(big)+2)
	cli(false, true, huge, "secret", "set", "payments/prod/HUGE")
	api("PUT", "/v1/secrets/payments/prod/HUGE", e.token, `{"value":"`+huge+`"}`)

	// run and export in every format.
	mount := filepath.Join(e.dir, "mounted")
	for _, format := range []string{"dotenv", "json"} {
		out := cli(true, true, "", "run", "--env", "payments/prod", "--mount", mount, "--mount-format", format, "--",
			"sh", "-c", `echo "key=$API_KEY pw=$DB_PASSWORD"; cat "$0"`, mount)
		if !strings.Contains(out, "key=") {
			t.Fatalf("run: got %q; want the command's masked output", out)
		}
	}
	for _, format := range []string{"dotenv", "json", "shell", "github", "gitlab"} {
		dst := filepath.Join(e.dir, "export."+format)
		// For github, stdout holds ::add-mask:: commands: the value
		// handed to the runner so that it masks it (the runner does not
		// log workflow commands). That is a delivery, not a leak.
		cli(true, format != "github", "", "export", "--env", "payments/prod", "--format", format, "--output", dst)
		if b, _ := os.ReadFile(dst); !bytes.Contains(b, []byte(apiKey)) {
			t.Fatalf("export --format %s: the file lacks the value; the test would miss a delivery", format)
		}
	}

	// A rotation whose rotator fails, echoing the request (with the value
	// it was given) on stdout and stderr.
	rotVal := c.secret("value of a secret whose rotation fails", "cnE_"+rnd())
	cli(true, true, rotVal, "secret", "set", "payments/prod/ROT_KEY")
	prog := writeFile("failing-rotator.sh", "#!/bin/sh\nin=$(cat)\nprintf '%s\\n' \"$in\"\nprintf 'cannot rotate: %s\\n' \"$in\" >&2\nexit 3\n", 0o755)
	cli(true, true, "", "rotation", "set", "payments/prod/ROT_KEY", "--every", "30d", "--rotator", "exec", "--config", "command="+prog)
	cli(false, true, "", "rotate", "now", "payments/prod/ROT_KEY")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var h []rotate.Rotation
		json.Unmarshal([]byte(cli(true, true, "", "rotation", "history", "payments/prod/ROT_KEY", "-o", "json")), &h)
		if len(h) > 0 && h[0].Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failing rotation recorded no error: %+v\nserver log:\n%s", h, e.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cli(true, true, "", "rotate", "status")

	// OIDC logins through a binding of a real (loopback) issuer: one that
	// matches, whose just-in-time token is a canary too; one signed but
	// not matching the binding; one whose signature is forged (a canary);
	// one from an unknown issuer.
	iss := oidctest.NewIssuer(t)
	cli(true, true, "", "binding", "create", "deploy", "--issuer", iss.URL, "--audience", "tokenward",
		"--claim", "repository=acme/payments", "--grant", "read:payments/prod/*", "--ttl", "15m")
	claims := func(repo string) map[string]any {
		now := time.Now().Unix()
		return map[string]any{"iss": iss.URL, "aud": "tokenward", "sub": "repo:" + repo, "repository": repo,
			"iat": now, "nbf": now - 5, "exp": now + 300, "jti": rnd()}
	}
	good := c.secret("matching JWT", iss.Sign(t, claims("acme/payments")))
	jit := c.secret("just-in-time token", strings.TrimSpace(cli(true, false, "", "login", "--oidc", "--jwt-file", writeFile("good.jwt", good, 0o600))))
	if got := strings.TrimSpace(cli(true, false, "", "secret", "get", "payments/prod/API_KEY", "--token-file", writeFile("jit.token", jit, 0o600))); got != apiKey {
		t.Fatalf("secret get with the just-in-time token: got %.8q...; want the value", got)
	}
	other := c.secret("JWT of another repository", iss.Sign(t, claims("acme/other")))
	cli(false, true, "", "login", "--oidc", "--jwt-file", writeFile("other.jwt", other, 0o600))
	api("POST", "/v1/auth/oidc/login", "", `{"jwt":"`+other+`"}`)
	sig := c.secret("forged JWT signature", "cnF_"+rnd())
	b64 := base64.RawURLEncoding.EncodeToString
	forgedFrom := iss.Sign(t, claims("acme/payments"))
	forged := c.secret("forged JWT", forgedFrom[:strings.LastIndex(forgedFrom, ".")+1]+b64([]byte(sig)))
	api("POST", "/v1/auth/oidc/login", "", `{"jwt":"`+forged+`"}`)
	api("POST", "/v1/auth/oidc/login", "", `{"binding":"deploy","jwt":"`+forged+`"}`)
	cli(false, true, "", "login", "--oidc", "--jwt-file", writeFile("forged.jwt", forged, 0o600))
	stranger := c.secret("JWT of an unknown issuer", b64([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`))+"."+
		b64([]byte(`{"iss":"https://issuer.invalid","aud":"tokenward","sub":"repo:acme/x","exp":4102444800}`))+"."+b64([]byte("cnG_"+rnd())))
	api("POST", "/v1/auth/oidc/login", "", `{"jwt":"`+stranger+`"}`)

	// scan over a file that holds a managed secret's value: reported by
	// name, the value not repeated.
	scanned := writeFile("config.env", "API_KEY="+apiKey+"\n", 0o600)
	cli(false, true, "", "scan", "--server", e.addr, scanned)
	cli(false, true, "", "scan", "--server", e.addr, "--format", "json", scanned)
	if !strings.Contains(c.surfaces["stdout of scan"], "API_KEY") {
		t.Fatalf("scan did not report the managed secret; the test would check nothing:\n%s", c.surfaces["stdout of scan"])
	}

	// Reading commands whose output must hold no value.
	cli(true, true, "", "report", "-o", "json")
	cli(true, true, "", "anomalies", "list", "--all")
	cli(true, true, "", "audit", "search")
	cli(true, true, "", "audit", "tail")
	cli(true, true, "", "audit", "verify")
	cli(true, true, "", "audit", "export")
	api("GET", "/v1/usage/tokens", e.token, "")
	api("GET", "/v1/report", e.token, "")
	cancelEvents()
	<-eventsDone
	if !strings.Contains(events.String(), "payments/prod") {
		t.Fatalf("the events stream saw no secret event; the test would check nothing:\n%.500s", events.String())
	}
	c.surface("events stream", events.String())
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("tokenward_")) {
		t.Fatalf("metrics page without tokenward metrics:\n%.500s", metrics)
	}
	c.surface("metrics page", string(metrics))

	e.stopGracefully()
	logs := e.logs.String()
	if !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatalf("no debug lines in the server log; the test would miss them")
	}
	c.surface("server log", logs)
	audit, err := os.ReadFile(auditFile)
	if err != nil || !bytes.Contains(audit, []byte("secret.write")) {
		t.Fatalf("audit file: %v, %d bytes without secret.write", err, len(audit))
	}
	c.surface("audit file", string(audit))
	return c
}

// dumpTables renders every row of every table in the public schema as
// text, as pg_dump would write it (bytea as \x hex).
func dumpTables(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("no tables")
	}
	var dump strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&dump, "-- %s\n%s\n", table, strings.Join(lines, "\n"))
	}
	return dump.String()
}
