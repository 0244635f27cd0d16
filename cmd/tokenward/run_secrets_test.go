//go:build !tokenward_client

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// newGatewayRunEnv is a real server with a project acme/prod holding one
// secret and a route github whose upstream is api.github.com, so that
// run --gateway github sets GITHUB_TOKEN and GH_TOKEN to the run's token.
func newGatewayRunEnv(t *testing.T) *rotEnv {
	t.Helper()
	e := newRotEnv(t)
	e.start()
	e.mustCLI("", "project", "create", "acme", "--envs", "prod")
	e.mustCLI("ghp_review_UpstreamCredential_0123456789", "secret", "set", "acme/prod/UPSTREAM")
	e.mustCLI("", "gateway", "route", "create", "github", "--upstream", "https://api.github.com",
		"--secret", "acme/prod/UPSTREAM", "--inject", "header:Authorization=Bearer {{value}}", "--allow", "GET /repos/acme/*")
	return e
}

// TestRunGatewayTokenMasked: run --gateway puts the run's own tokenward
// token in the tools' variables; the command printing them must show ***,
// on its first start and after a --watch restart.
func TestRunGatewayTokenMasked(t *testing.T) {
	e := newGatewayRunEnv(t)
	t.Run("plain", func(t *testing.T) {
		out, errs, err := e.cli("", "run", "--env", "acme/prod", "--gateway", "github", "--",
			"sh", "-c", `echo "gh=$GITHUB_TOKEN"; echo "ghcli=$GH_TOKEN" >&2`)
		if err != nil {
			t.Fatalf("run: %v\n%s%s", err, out, errs)
		}
		if strings.Contains(out+errs, e.token) {
			t.Errorf("run's output holds its token in clear:\n%s%s", out, errs)
		}
		if !strings.Contains(out, "gh=***\n") || !strings.Contains(errs, "ghcli=***\n") {
			t.Errorf("got stdout %q, stderr %q; want gh=*** and ghcli=***", out, errs)
		}
	})
	t.Run("without gateway", func(t *testing.T) {
		// The command gets the run's token as TOKENWARD_TOKEN too.
		out, errs, err := e.cli("", "run", "--env", "acme/prod", "--", "sh", "-c", `echo "tw=$TOKENWARD_TOKEN"`)
		if err != nil {
			t.Fatalf("run: %v\n%s%s", err, out, errs)
		}
		if strings.Contains(out+errs, e.token) || !strings.Contains(out, "tw=***\n") {
			t.Errorf("got stdout %q; want tw=***, the token masked", out)
		}
	})
	t.Run("watch", func(t *testing.T) {
		stop, starts := filepath.Join(e.dir, "stop"), filepath.Join(e.dir, "starts")
		script := `echo "start gh=$GITHUB_TOKEN"; echo x >> ` + starts + `; trap 'exit 0' TERM; while [ ! -f ` + stop + ` ]; do sleep 0.05; done`
		type result struct {
			out, errs string
			err       error
		}
		done := make(chan result, 1)
		go func() {
			out, errs, err := e.cli("", "run", "--env", "acme/prod", "--gateway", "github", "--watch", "--watch-interval", "1s",
				"--stop-timeout", "5s", "--", "sh", "-c", script)
			done <- result{out, errs, err}
		}()
		waitStarts := func(n int) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if b, _ := os.ReadFile(starts); strings.Count(string(b), "x\n") >= n {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("waiting for %d starts of the command", n)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		waitStarts(1)
		e.mustCLI("fake-other-value-1234", "secret", "set", "acme/prod/OTHER") // restarts the command
		waitStarts(2)
		os.WriteFile(stop, nil, 0o600)
		r := <-done
		if r.err != nil {
			t.Fatalf("run: %v\n%s%s", r.err, r.out, r.errs)
		}
		if strings.Contains(r.out+r.errs, e.token) {
			t.Errorf("run --watch's output holds its token in clear:\n%s%s", r.out, r.errs)
		}
		if n := strings.Count(r.out, "start gh=***\n"); n != 2 {
			t.Errorf("got stdout %q; want start gh=*** twice (before and after the restart)", r.out)
		}
	})
}

// TestRunGatewayVariableClash: a secret injected under a name run
// --gateway sets itself is refused before the command starts, the
// variable named and no value shown; --only leaving it out, or --prefix
// renaming it, resolves the clash.
func TestRunGatewayVariableClash(t *testing.T) {
	e := newGatewayRunEnv(t)
	const value = "ghp_stored_secret_value_0123456789abcdef"
	e.mustCLI(value, "secret", "set", "acme/prod/GH_TOKEN")
	started := filepath.Join(e.dir, "started")
	for _, tt := range []struct {
		name  string
		flags []string
		clash bool
	}{
		{"clash", nil, true},
		{"clash kept by --no-override", []string{"--no-override"}, true},
		{"left out by --only", []string{"--only", "UPSTREAM"}, false},
		{"renamed by --prefix", []string{"--prefix", "APP_"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(started)
			args := append([]string{"run", "--env", "acme/prod", "--gateway", "github"}, tt.flags...)
			args = append(args, "--", "sh", "-c", `touch `+started+`; echo "gh=$GH_TOKEN"`)
			out, errs, err := e.cli("", args...)
			_, statErr := os.Stat(started)
			if strings.Contains(out+errs, value) || strings.Contains(out+errs, e.token) {
				t.Errorf("output holds a value in clear:\n%s%s", out, errs)
			}
			if !tt.clash {
				if err != nil || statErr != nil {
					t.Fatalf("run: got %v (command started: %v); want success\n%s%s", err, statErr == nil, out, errs)
				}
				if !strings.Contains(out, "gh=***\n") {
					t.Errorf("got stdout %q; want gh=*** (the gateway's variable, masked)", out)
				}
				return
			}
			if err == nil || statErr == nil {
				t.Fatalf("run: got %v, command started %v; want an error before it starts\n%s%s", err, statErr == nil, out, errs)
			}
			if !strings.Contains(errs, "GH_TOKEN") || !strings.Contains(errs, "--gateway") {
				t.Errorf("got stderr %q; want the clashing variable GH_TOKEN and --gateway named", errs)
			}
		})
	}
}

// TestTokenFileErrorNamesFlag: a malformed token read from --token-file is
// reported against --token-file, not TOKENWARD_TOKEN, and not repeated.
func TestTokenFileErrorNamesFlag(t *testing.T) {
	dir := t.TempDir()
	bad := "tws_" + strings.Repeat("Q", tokenward.TokenLen-4) // right form, wrong checksum
	for _, tt := range []struct{ name, content string }{
		{"bad checksum", bad},
		{"wrong length", "tws_" + strings.Repeat("Z", 20)},
		{"not a token", "s3cr3t-not-a-token-value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(f, []byte(tt.content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := runCLI(t, map[string]string{"TOKENWARD_ADDR": "http://127.0.0.1:1"}, "secret", "list", "acme/prod", "--token-file", f)
			if code == 0 || !strings.Contains(errOut, "--token-file") || strings.Contains(errOut, "TOKENWARD_TOKEN:") {
				t.Errorf("got exit %d, stderr %q; want an error naming --token-file, not TOKENWARD_TOKEN", code, errOut)
			}
			if strings.Contains(errOut, tt.content) || strings.Contains(errOut, tt.content[:8]) {
				t.Errorf("stderr %q repeats the file's token", errOut)
			}
		})
	}
}

// TestPathArgumentNotEchoed: a value given where a PROJECT/ENV[/NAME] is
// wanted (or as an extra argument) is a usage error that says what was
// wrong without repeating the argument.
func TestPathArgumentNotEchoed(t *testing.T) {
	const value = "s3cr3tvalue_Zq8xK2mB3vR7pLw0ZcYtN"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"secret", "get", value}, "PROJECT/ENV/NAME: want 3 non-empty parts separated by /, got 1"},
		{[]string{"secret", "get", "acme/" + value}, "PROJECT/ENV/NAME: want 3 non-empty parts separated by /, got 2"},
		{[]string{"secret", "get", value + "/a/b/c"}, "PROJECT/ENV/NAME: want 3 non-empty parts separated by /, got 4"},
		{[]string{"secret", "get", "acme//" + value}, "PROJECT/ENV/NAME: want 3 non-empty parts separated by /, got an empty part"},
		{[]string{"secret", "list", value}, "PROJECT/ENV: want 2 non-empty parts separated by /, got 1"},
		{[]string{"secret", "get", "acme/prod/KEY", value}, "unexpected argument (not repeated"},
		{[]string{"token", "list", value}, "unexpected argument (not repeated"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("got exit %d, stderr %q; want exit 2 and %q", code, errOut, tt.want)
			}
			if strings.Contains(errOut, "s3cr3t") {
				t.Errorf("stderr %q repeats the argument", errOut)
			}
		})
	}
}

// TestFlagErrorsRedacted: a bad flag's error names at most the flag, never
// the rest of the argument it came in (which may hold a value), for every
// command.
func TestFlagErrorsRedacted(t *testing.T) {
	const value = "SOMESECRETvalue0123456789"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"secret", "set", "-x" + value}, "unknown shorthand flag: 'x' (see tokenward secret set --help)"},
		{[]string{"secret", "set", "acme/prod/KEY", "-x" + value}, "unknown shorthand flag: 'x'"},
		{[]string{"run", "-x" + value, "--", "true"}, "unknown shorthand flag: 'x' (see tokenward run --help)"},
		{[]string{"token", "list", "-hx" + value}, "unknown shorthand flag: 'x'"},
		{[]string{"-x" + value}, "unknown shorthand flag: 'x' (see tokenward --help)"},
		{[]string{"gateway", "route", "create", "-x" + value}, "unknown shorthand flag: 'x'"},
		{[]string{"secret", "get", "---" + value}, "bad flag syntax (see tokenward secret get --help)"},
		{[]string{"secret", "get", "--bogus=" + value}, "unknown flag: --bogus (see tokenward secret get --help)"},
		{[]string{"token", "list", "--bogus"}, "unknown flag: --bogus (see tokenward token list --help)"},
		{[]string{"secret", "get", "--" + tokenward.PrefixAdmin + value}, "unknown flag (a tokenward token, not repeated"},
		{[]string{"token", "list", "-o"}, "flag needs an argument: 'o' (see tokenward token list --help)"},
		{[]string{"project", "list", "-o", "xml"}, `invalid argument "xml" for "-o, --output" flag: want table or json`},
		{[]string{"run", "--mask-min", value, "--", "true"}, "invalid argument for --mask-min (not repeated, as it may be a value)"},
		{[]string{"project", "list", "-o", value}, "invalid argument for --output (not repeated"},
		{[]string{"run", "--env", value, "--", "true"}, "--env (the argument is not repeated, as it may be a value): want project/environment"},
		{[]string{"run", "--env", "acme/" + value, "--", "true"}, "--env (the argument is not repeated, as it may be a value): want a lowercase DNS label"},
		{[]string{"run", "--env", "acme", "--", "true"}, `--env "acme": want project/environment`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("got exit %d, stderr %q; want exit 2 and %q", code, errOut, tt.want)
			}
			if strings.Contains(errOut, "SOMESECRET") {
				t.Errorf("stderr %q repeats the flag's argument", errOut)
			}
		})
	}
}

// TestGatewayEnvRoutesClash: two --gateway routes to the same known API
// would set its variables to two URLs, the last silently winning: refused,
// the variable named; the same route given twice is no clash.
func TestGatewayEnvRoutesClash(t *testing.T) {
	routes := routeTable{"github": "https://api.github.com", "gh2": "https://api.github.com/", "openai": "https://api.openai.com/v1"}
	for _, tt := range []struct {
		routes []string
		clash  string // the variable the error names; "": no error
	}{
		{[]string{"github", "gh2"}, "GITHUB_API_URL"},
		{[]string{"github", "openai"}, ""},
		{[]string{"github", "github"}, ""},
	} {
		t.Run(strings.Join(tt.routes, " "), func(t *testing.T) {
			_, err := gatewayEnv(context.Background(), routes, "https://tw.example", "twj_JobToken", tt.routes)
			switch {
			case tt.clash == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tt.clash != "" && (err == nil || !strings.Contains(err.Error(), tt.clash)):
				t.Errorf("got %v; want an error naming %s", err, tt.clash)
			case err != nil && strings.Contains(err.Error(), "twj_JobToken"):
				t.Errorf("error %q holds the token", err)
			}
		})
	}
}
