//go:build !tokenward_client

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward/internal/inject"
)

// cmdPipelines is the testscript command `pl` of the pipelines scripts
// (run*.txtar, export*.txtar, check*.txtar, apply*.txtar):
//
//	pl exit N PROG ARGS...       run PROG; its exit code must be N (stdout/stderr as exec)
//	pl signal SIG N READY PROG ARGS...
//	                             start PROG, wait for file READY, send SIG to PROG
//	                             (not its children), and want exit code N; its
//	                             output goes to sig.stdout and sig.stderr
//	pl reldate VAR OFFSET        set VAR to the date today+OFFSET (+5d, -1d), YYYY-MM-DD
//	pl noleak VALUE FILE...      no FILE holds VALUE raw, base64 (any alphabet,
//	                             padded or not), URL-encoded or JSON-escaped
//	pl decode FORMAT FILE WANT   inject.Decode(FORMAT, FILE) equals the JSON object in WANT
//	pl waitfile FILE [REGEXP]    wait (up to 20s) until FILE exists and matches REGEXP
func cmdPipelines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: pl exit|signal|reldate|noleak|decode ...")
	}
	if neg {
		ts.Fatalf("pl does not take !")
	}
	switch args[0] {
	case "exit":
		plExit(ts, args[1:])
	case "signal":
		plSignal(ts, args[1:])
	case "reldate":
		plRelDate(ts, args[1:])
	case "noleak":
		plNoLeak(ts, args[1:])
	case "decode":
		plDecode(ts, args[1:])
	case "waitfile":
		plWaitFile(ts, args[1:])
	default:
		ts.Fatalf("pl: unknown subcommand %q", args[0])
	}
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

func plExit(ts *testscript.TestScript, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: pl exit N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("pl exit: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	if got := exitCodeOf(err); got != want {
		ts.Fatalf("%s exited with %d (%v); want %d", args[1], got, err, want)
	}
}

var testSignals = map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT}

func plSignal(ts *testscript.TestScript, args []string) {
	if len(args) < 4 {
		ts.Fatalf("usage: pl signal SIG N READY PROG ARGS...")
	}
	sig, ok := testSignals[args[0]]
	want, err := strconv.Atoi(args[1])
	if !ok || err != nil {
		ts.Fatalf("pl signal: bad signal or code")
	}
	ready := ts.MkAbs(args[2])
	prog := args[3]
	if prog == "tokenward" {
		prog = filepath.Join(binDir, "tokenward")
	}
	cmd := exec.Command(prog, args[4:]...)
	cmd.Dir = ts.Getenv("WORK")
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TOKENWARD_ADDR", "TOKENWARD_TOKEN"} {
		cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		ts.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// A ready file is how the child says it runs (and has set its traps).
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			ts.Fatalf("child never wrote %s; stderr:\n%s", args[2], stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(sig)
	var werr error
	select {
	case werr = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		ts.Fatalf("tokenward did not exit after SIG%s", args[0])
	}
	ts.Check(os.WriteFile(filepath.Join(cmd.Dir, "sig.stdout"), stdout.Bytes(), 0o600))
	ts.Check(os.WriteFile(filepath.Join(cmd.Dir, "sig.stderr"), stderr.Bytes(), 0o600))
	if got := exitCodeOf(werr); got != want {
		ts.Fatalf("exited with %d after SIG%s; want %d\nstdout:\n%s\nstderr:\n%s", got, args[0], want, &stdout, &stderr)
	}
}

func plRelDate(ts *testscript.TestScript, args []string) {
	if len(args) != 2 || !strings.HasSuffix(args[1], "d") {
		ts.Fatalf("usage: pl reldate VAR +Nd")
	}
	days, err := strconv.Atoi(strings.TrimSuffix(args[1], "d"))
	if err != nil {
		ts.Fatalf("pl reldate: %v", err)
	}
	ts.Setenv(args[0], time.Now().UTC().AddDate(0, 0, days).Format("2006-01-02"))
}

// leakForms are the forms of a value a masked output must not hold.
func leakForms(v string) []string {
	b := []byte(v)
	forms := []string{v,
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		url.QueryEscape(v), url.PathEscape(v),
	}
	j, _ := json.Marshal(v) // HTML-safe escapes, as Go writes them
	forms = append(forms, strings.Trim(string(j), `"`))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	forms = append(forms, strings.Trim(strings.TrimSpace(buf.String()), `"`))
	var ascii strings.Builder // Python's json.dumps default
	for _, r := range strings.Trim(strings.TrimSpace(buf.String()), `"`) {
		if r < utf8.RuneSelf {
			ascii.WriteRune(r)
		} else {
			fmt.Fprintf(&ascii, `\u%04x`, r)
		}
	}
	forms = append(forms, ascii.String())
	slices.Sort(forms)
	return slices.Compact(forms)
}

func plNoLeak(ts *testscript.TestScript, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: pl noleak VALUE FILE...")
	}
	forms := leakForms(args[0])
	for _, f := range args[1:] {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		for _, form := range forms {
			if bytes.Contains(b, []byte(form)) {
				ts.Fatalf("%s holds the secret (a %d-byte form of it)", f, len(form))
			}
		}
	}
	ts.Logf("pl noleak: %d forms absent from %d files", len(forms), len(args)-1)
}

func plDecode(ts *testscript.TestScript, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: pl decode FORMAT FILE WANT.json")
	}
	f, err := inject.ParseFormat(args[0])
	ts.Check(err)
	got, err := inject.Decode(f, []byte(ts.ReadFile(args[1])))
	if err != nil {
		ts.Fatalf("decode %s as %s: %v", args[1], args[0], err)
	}
	var want map[string]string
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[2])), &want))
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] {
				ts.Logf("%s: got %q; want %q", k, got[k], want[k])
			}
		}
		ts.Fatalf("%s (%s) does not round-trip: got %d names; want %d", args[1], args[0], len(got), len(want))
	}
}

func plWaitFile(ts *testscript.TestScript, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: pl waitfile FILE [REGEXP]")
	}
	re := regexp.MustCompile("")
	if len(args) == 2 {
		re = regexp.MustCompile(args[1])
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && re.Match(b) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(ts.MkAbs(args[0]))
	ts.Fatalf("%s did not come to match %q within 20s; it holds:\n%s", args[0], re, b)
}
