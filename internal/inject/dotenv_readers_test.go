package inject

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// gitlabJobValue is what a job receives for one line of a dotenv artifact:
// GitLab stores the part after the first "=" with blanks stripped
// (Ci::ParseDotenvArtifactService#scan_line!) as a variable with raw: false,
// and the runner expands every non-raw variable with os.Expand and a lookup
// that maps "$" to "$" (gitlab-runner common/variables.go, JobVariables.Get
// and ExpandValue). Other names expand to a marker, so a change shows.
func gitlabJobValue(line string) string {
	_, v, _ := strings.Cut(line, "=")
	return os.Expand(strings.TrimSpace(v), func(name string) string {
		if name == "$" {
			return "$"
		}
		return "<expanded " + name + ">"
	})
}

// TestGitLabDollarArrivesUnchanged: a value with $ reaches the job as
// stored, though the runner expands dotenv variables.
func TestGitLabDollarArrivesUnchanged(t *testing.T) {
	tests := []string{
		"pa$word",
		"$HOME",
		"${PATH}",
		"a$$b",
		"$$$",
		"ends$",
		"$(id) `id`",
		"${}x",
		"${unclosed",
		"$1$*$#$?",
		"no dollar",
	}
	for _, v := range tests {
		t.Run(v, func(t *testing.T) {
			data, err := Encode(FormatGitLab, map[string]string{"K": v})
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got := gitlabJobValue(strings.TrimSuffix(string(data), "\n")); got != v {
				t.Errorf("job gets %q; want %q (artifact %q)", got, v, data)
			}
			back, err := Decode(FormatGitLab, data)
			if err != nil || back["K"] != v {
				t.Errorf("Decode: got %q, %v; want %q", back["K"], err, v)
			}
		})
	}
}

// dotenvReaderValues are values whose quoting the dotenv readers disagree on.
var dotenvReaderValues = map[string]string{
	"DOUBLE_BACKSLASH": `a\\b`,
	"TRAILING_BACKSL":  `ends\`,
	"UNC":              `\\server\share`,
	"BACKSLASH_QUOTE":  `x\'y`,
	"WINDOWS":          `C:\path\to\n\\x`,
	"SINGLE_BACKSL":    `a\b`,
	"DOLLAR_QUOTED":    `it's $HOME`,
	"ESCAPED_DOLLAR":   `it's \$HOME`,
	"QUOTES":           `it's a "quoted" value`,
	"MULTILINE":        "line one\nline 'two'",
	"CR":               "a\rb",
	"TAB_ESCAPES":      `it's \t \a \v \f`,
	"PLAIN":            "plain value # not a comment",
	"DOLLAR":           "$HOME $(id) `id`",
	"EMPTY":            "",
	"UNICODE":          "pässwörd-✓",
}

// pythonDotenv reads data with python-dotenv's dotenv_values, as an
// application calling load_dotenv would; interpolate chooses ${NAME}
// expansion. It skips the test when python-dotenv is not importable.
func pythonDotenv(t *testing.T, data []byte, interpolate bool) map[string]string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if exec.Command(py, "-c", "import dotenv").Run() != nil {
		t.Skip("python-dotenv not importable")
	}
	script := `import sys, io, json
from dotenv import dotenv_values
data = sys.stdin.buffer.read().decode("utf-8")
vals = dotenv_values(stream=io.StringIO(data, newline=""), interpolate=sys.argv[1] == "1")
json.dump(vals, sys.stdout)`
	arg := "0"
	if interpolate {
		arg = "1"
	}
	cmd := exec.Command(py, "-c", script, arg)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python-dotenv: %v: %s", err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("python-dotenv warned: %s", stderr.Bytes())
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python-dotenv output: %v", err)
	}
	return got
}

// TestDotenvPythonDotenvRoundTrip: python-dotenv reads what the dotenv
// format writes back to the same values: backslashes in single quotes
// (python-dotenv unescapes \\ and \' there), a trailing backslash, and $
// in double quotes (python-dotenv has no \$ escape).
func TestDotenvPythonDotenvRoundTrip(t *testing.T) {
	data, err := Encode(FormatDotenv, dotenvReaderValues)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	// ${NAME} is expanded by python-dotenv's default, in every quoting;
	// the docs say to read such files with interpolate=False. Without
	// ${...} in any value the default reads them unchanged too.
	for _, interpolate := range []bool{false, true} {
		got := pythonDotenv(t, data, interpolate)
		for n, want := range dotenvReaderValues {
			if got[n] != want {
				t.Errorf("interpolate=%v: %s: got %q; want %q (line %q)", interpolate, n, got[n], want, lineOf(data, n))
			}
		}
		if len(got) != len(dotenvReaderValues) {
			t.Errorf("interpolate=%v: got %d variables; want %d", interpolate, len(got), len(dotenvReaderValues))
		}
	}
	back, err := Decode(FormatDotenv, data)
	if err != nil || !maps.Equal(back, dotenvReaderValues) {
		t.Errorf("Decode: got %q, %v; want %q", back, err, dotenvReaderValues)
	}
}

// TestDotenvNodeRoundTrip: Node's dotenv parser (util.parseEnv, Node >=
// 20.12, the parser of node --env-file) reads back every value the
// format writes single-quoted, and every double-quoted one without a
// backslash or a double quote (Node unescapes only \n in double quotes).
func TestDotenvNodeRoundTrip(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	vals := map[string]string{}
	for n, v := range dotenvReaderValues {
		if !strings.ContainsAny(v, "\\\"\r") {
			vals[n] = v
		}
	}
	data, err := Encode(FormatDotenv, vals)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	cmd := exec.Command(node, "-e", `const u = require("util");
if (typeof u.parseEnv !== "function") { process.exit(3) }
let s = ""; process.stdin.on("data", d => s += d).on("end", () => process.stdout.write(JSON.stringify(u.parseEnv(s))))`)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skip("this node has no util.parseEnv")
	}
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output: %v", err)
	}
	if !maps.Equal(got, vals) {
		t.Errorf("got %q; want %q\nfile:\n%s", got, vals, data)
	}
}

func lineOf(data []byte, name string) string {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, name+"=") {
			return l
		}
	}
	return ""
}

// TestDotenvRefusesUnreadableTrailingBackslash: a value ending in a
// backslash that cannot go unquoted is refused, naming the secret only.
func TestDotenvRefusesUnreadableTrailingBackslash(t *testing.T) {
	for _, v := range []string{`secret #\`, ` lead\`, "two\nlines\\", `'quoted\`, `"quoted\`} {
		t.Run(v, func(t *testing.T) {
			_, err := Encode(FormatDotenv, map[string]string{"K": v})
			if err == nil || !strings.Contains(err.Error(), "secret K") || strings.Contains(err.Error(), v) {
				t.Fatalf("got %v; want an error naming K, without the value", err)
			}
		})
	}
}
