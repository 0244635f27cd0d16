//go:build !tokenward_client

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/loadgen"
	"github.com/tokenward/tokenward/internal/pgtest"
)

func TestBenchPlan(t *testing.T) {
	const pw = "s3cr3t-pw-9d1f"
	pgURL := "postgres://bench:" + pw + "@127.0.0.1:5432/bench"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // "mix|duration|requests|start|servers|targets"
		wantErr string
	}{
		{name: "defaults", want: "read=90,write=10|30s|0||1|"},
		{name: "duration", args: []string{"--duration", "5s", "--mix", "env=1,oidc=1"}, want: "env=1,oidc=1|5s|0||1|"},
		{name: "requests", args: []string{"--requests", "1000"}, want: "read=90,write=10|0s|1000||1|"},
		{name: "sqlite", args: []string{"--start", "sqlite"}, want: "read=90,write=10|30s|0|sqlite|1|"},
		{name: "postgres url", args: []string{"--start", pgURL, "--servers", "3"}, want: "read=90,write=10|30s|0|postgres|3|"},
		{name: "postgres from env", args: []string{"--start", "postgres"}, env: map[string]string{"TOKENWARD_STORAGE": pgURL}, want: "read=90,write=10|30s|0|postgres|1|"},
		{name: "targets", args: []string{"--target", "http://127.0.0.1:1/", "--target", "https://b:2"}, want: "read=90,write=10|30s|0||1|http://127.0.0.1:1,https://b:2"},

		{name: "both bounds", args: []string{"--duration", "1s", "--requests", "5"}, wantErr: "not both"},
		{name: "zero requests", args: []string{"--requests", "0"}, wantErr: "--requests must be at least 1"},
		{name: "zero duration", args: []string{"--duration", "0s"}, wantErr: "--duration must be positive"},
		{name: "zero concurrency", args: []string{"--concurrency", "0"}, wantErr: "--concurrency must be from 1"},
		{name: "huge concurrency", args: []string{"--concurrency", "10001"}, wantErr: "--concurrency must be from 1"},
		{name: "bad mix", args: []string{"--mix", "read=x"}, wantErr: "--mix: weight of read"},
		{name: "gateway", args: []string{"--mix", "read=1,gateway=1"}, wantErr: "not available in this build"},
		{name: "unknown start", args: []string{"--start", "mysql://u:" + pw + "@h/db"}, wantErr: "--start: want sqlite"},
		{name: "postgres without env", args: []string{"--start", "postgres"}, wantErr: "TOKENWARD_STORAGE"},
		{name: "servers on sqlite", args: []string{"--start", "sqlite", "--servers", "2"}, wantErr: "needs --start postgres"},
		{name: "servers without start", args: []string{"--servers", "2"}, wantErr: "needs --start postgres"},
		{name: "zero servers", args: []string{"--servers", "0"}, wantErr: "--servers must be at least 1"},
		{name: "start and target", args: []string{"--start", "sqlite", "--target", "http://127.0.0.1:1"}, wantErr: "not both"},
		{name: "bad target", args: []string{"--target", "ftp://x"}, wantErr: "--target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &benchFlags{}
			cmd := &cobra.Command{}
			f.register(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			p, err := f.plan(cmd.Flags().Changed, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != 2 {
					t.Fatalf("got %v (exit %d); want a usage error containing %q", err, exitCode(err), tc.wantErr)
				}
				if strings.Contains(err.Error(), pw) {
					t.Errorf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{p.mix.String(), p.duration.String(), itoa(p.requests), p.start, itoa(int64(p.servers)), strings.Join(p.targets, ",")}, "|")
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			if p.start == "postgres" && p.storage != pgURL {
				t.Errorf("storage: got %q; want the URL", p.storage)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// tokenShaped matches anything that looks like a tokenward token.
var tokenShaped = regexp.MustCompile(`tw[a-z]_[0-9A-Za-z]{16,}`)

// runBench runs the real binary's bench with env (and no TOKENWARD_
// variables of the test's own) and returns its report, stdout and stderr.
func runBench(t *testing.T, env []string, args ...string) (*loadgen.Report, string, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), append([]string{"bench"}, args...)...)
	cmd.Env = append(benchServerEnv(os.Environ(), ""), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if m := tokenShaped.FindString(out.String() + errb.String()); m != "" {
		t.Errorf("bench printed a token: %s…", m[:8])
	}
	var r loadgen.Report
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
			t.Fatalf("bench --json: %v\n%s", jerr, out.String())
		}
	}
	return &r, out.String(), errb.String(), err
}

// checkReport asserts every operation of mix ran, with no error.
func checkReport(t *testing.T, r *loadgen.Report, mix string) {
	t.Helper()
	if r.Schema != loadgen.Schema || r.Config.Mix != mix {
		t.Errorf("schema %q, mix %q; want %q, %q", r.Schema, r.Config.Mix, loadgen.Schema, mix)
	}
	want, _ := loadgen.ParseMix(mix)
	if len(r.Operations) != len(want) {
		t.Fatalf("got %d operations; want %d: %+v", len(r.Operations), len(want), r.Operations)
	}
	for i, o := range r.Operations {
		if o.Op != want[i].Op || o.Requests == 0 || o.Errors != 0 || o.RPS <= 0 || o.Latency.Max <= 0 {
			t.Errorf("operation %d: got %s with %d requests, %d errors %v, %.1f/s, max %vµs; want %s with requests and no error",
				i, o.Op, o.Requests, o.Errors, o.ErrorSamples, o.RPS, o.Latency.Max, want[i].Op)
		}
	}
	if r.Total.Errors != 0 || r.Total.Requests == 0 {
		t.Errorf("total: got %d requests, %d errors", r.Total.Requests, r.Total.Errors)
	}
}

// checkStopped asserts the servers bench started are gone.
func checkStopped(t *testing.T, r *loadgen.Report) {
	t.Helper()
	for _, s := range r.Servers {
		if err := syscall.Kill(s.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("server pid %d still exists after bench (kill 0: %v)", s.PID, err)
		}
	}
}

// TestBenchStartSQLite runs the real binary for about a second on a server
// it starts itself, with every operation and the baseline.
func TestBenchStartSQLite(t *testing.T) {
	const mix = "read=3,env=1,write=1,token=1,oidc=1"
	r, out, errs, err := runBench(t, nil, "--start", "sqlite", "--duration", "1s", "--concurrency", "4", "--mix", mix, "--baseline", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, errs)
	}
	checkReport(t, r, mix)
	if b := r.Baseline; b == nil || b.Requests == 0 || b.Errors != 0 {
		t.Errorf("baseline: got %+v; want requests and no error", b)
	}
	for _, o := range append(r.Operations, r.Total) {
		if o.RatioToBaseline == nil || *o.RatioToBaseline <= 0 {
			t.Errorf("%s: ratio to baseline %v; want a positive ratio", o.Op, o.RatioToBaseline)
		}
	}
	if len(r.Servers) != 1 || r.Servers[0].PID <= 0 || r.Servers[0].RSSBytes <= 0 || r.Servers[0].PeakRSSBytes < r.Servers[0].RSSBytes {
		t.Errorf("servers: got %+v; want one with a pid and its memory", r.Servers)
	}
	if r.Config.Start != "sqlite" || r.Config.Concurrency != 4 || r.Config.DurationSeconds != 1 || r.Machine.CPUs < 1 {
		t.Errorf("config %+v, machine %+v", r.Config, r.Machine)
	}
	checkStopped(t, r)
}

// TestBenchTarget loads a server bench did not start, by request count,
// as text, and checks that it leaves nothing behind: its tokens revoked
// (the load token and every one it minted), its binding deleted, its
// project retired.
func TestBenchTarget(t *testing.T) {
	e := newRotEnv(t)
	e.start()
	cmd := exec.Command(filepath.Join(binDir, "tokenward"), "bench", "--requests", "41", "--concurrency", "2", "--mix", "read=1,token=1,oidc=1,write=1", "--baseline")
	cmd.Env = append(benchServerEnv(os.Environ(), ""), "TOKENWARD_ADDR="+e.addr, "TOKENWARD_TOKEN="+e.token)
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s\n%s\nserver log:\n%s", err, outb.String(), errb.String(), e.logs)
	}
	out := outb.String()
	for _, want := range []string{"41 requests", "read", "token", "oidc", "write", "all", "1 target(s)", "machine: "} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// The baseline's halves, before and after the load, add up.
	if !regexp.MustCompile(`(?m)^\s*baseline\s+-\s+41\s+0\s`).MatchString(out) {
		t.Errorf("no baseline row of 41 requests, 0 errors:\n%s", out)
	}
	if m := tokenShaped.FindString(out + errb.String()); m != "" {
		t.Errorf("bench printed a token: %s…", m[:8])
	}
	if errb.Len() > 0 {
		t.Errorf("bench wrote to stderr (a cleanup warning?): %s", errb.String())
	}

	var tokens []struct {
		Name      string    `json:"name"`
		RevokedAt time.Time `json:"revoked_at"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI("", "token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	minted := 0
	for _, tok := range tokens {
		if strings.HasPrefix(tok.Name, "bench-") || strings.HasPrefix(tok.Name, "jit.bench-") {
			minted++
			if tok.RevokedAt.IsZero() {
				t.Errorf("token %s is still active after bench", tok.Name)
			}
		}
	}
	if minted < 1+10+10 { // the load token, ten created, ten by OIDC
		t.Errorf("got %d bench tokens; want at least 21", minted)
	}
	if out := e.mustCLI("", "binding", "list"); strings.Contains(out, "bench-") {
		t.Errorf("binding left behind:\n%s", out)
	}
	// There is no project delete: the project stays, its secrets archived.
	project := regexp.MustCompile(`bench-[0-9a-f]{8}`).FindString(e.mustCLI("", "project", "list"))
	if project == "" {
		t.Fatal("no bench project in the project list")
	}
	for _, env := range []string{"prod", "ci", "w"} {
		if out, _, _ := e.cli("", "secret", "list", project+"/"+env); regexp.MustCompile(`\b(K|S00|W0)\b`).MatchString(out) {
			t.Errorf("%s/%s still holds secrets after bench:\n%s", project, env, out)
		}
	}
}

// TestBenchStartPostgres starts the server on a real PostgreSQL database
// (the lead runs --servers 3 once several servers can share a database).
// A second server is either refused, clearly, or joins; the database
// password never appears either way.
func TestBenchStartPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	const mix = "read=1,env=1,write=1"
	r, out, errs, err := runBench(t, nil, "--start", pg.NewDatabase(t), "--servers", "1", "--requests", "60", "--concurrency", "2", "--mix", mix, "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, errs)
	}
	checkReport(t, r, mix)
	if r.Config.Start != "postgres" || len(r.Servers) != 1 {
		t.Errorf("config %+v, servers %+v; want one postgres server", r.Config, r.Servers)
	}
	if strings.Contains(out+errs, pg.Password) {
		t.Errorf("bench printed the database password")
	}
	checkStopped(t, r)

	r, out, errs, err = runBench(t, []string{"TOKENWARD_STORAGE=" + pg.NewDatabase(t)}, "--start", "postgres", "--servers", "2", "--requests", "20", "--concurrency", "2", "--mix", "read=1", "--json")
	t.Logf("two servers: %v, %s", err, errs)
	switch {
	case err != nil && !strings.Contains(errs, "server 2 of 2") && !strings.Contains(errs, "another tokenward server"):
		t.Errorf("two servers: got %v, %q; want them to serve or the second refused clearly", err, errs)
	case err == nil && len(r.Servers) != 2:
		t.Errorf("two servers: got %d in the report", len(r.Servers))
	}
	if strings.Contains(out+errs, pg.Password) {
		t.Errorf("bench printed the database password")
	}
}

// TestBenchTLS loads an https server whose certificate a private CA
// signed: the load's own client trusts TOKENWARD_CACERT as the CLI does.
func TestBenchTLS(t *testing.T) {
	certFile, keyFile, caFile := writeTestCert(t, t.TempDir())
	var logs bytes.Buffer
	_, addr, token := startServer(t, &logs, "--tls-cert", certFile, "--tls-key", keyFile)
	const mix = "read=1,write=1"
	r, out, errs, err := runBench(t, []string{"TOKENWARD_ADDR=" + addr, "TOKENWARD_TOKEN=" + token, "TOKENWARD_CACERT=" + caFile},
		"--requests", "20", "--concurrency", "2", "--mix", mix, "--json")
	if err != nil {
		t.Fatalf("bench over TLS: %v\n%s\n%s", err, out, errs)
	}
	checkReport(t, r, mix)
}
