package rotate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/tokenward/tokenward/internal/rotate"
)

// TestExecHelperProcess is the program the exec rotator runs in these
// tests: the test binary itself, re-run (the os/exec tests' pattern).
func TestExecHelperProcess(t *testing.T) {
	if os.Getenv("ROTATE_HELPER") != "1" {
		t.Skip("helper process")
	}
	mode := os.Args[len(os.Args)-1]
	in, _ := io.ReadAll(os.Stdin)
	var req ExecRequest
	if err := json.Unmarshal(in, &req); err != nil {
		os.Exit(9)
	}
	if log := os.Getenv("ROTATE_LOG"); log != "" {
		f, _ := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		fmt.Fprintf(f, "%s current=%s pending=%s argv=%s\n", req.Action, req.Current, req.Pending, strings.Join(os.Args, " "))
		f.Close()
	}
	switch mode {
	case "fail":
		fmt.Fprintf(os.Stderr, "cannot rotate %s\n", req.Current) // stderr holds a value; it must not surface
		os.Exit(3)
	case "sleep":
		time.Sleep(10 * time.Second)
	case "ok":
		if req.Action == "create" {
			fmt.Printf("exec-%s\n", req.RotationID)
		}
	}
	os.Exit(0)
}

func helperConfig(mode string) map[string]string {
	args, _ := json.Marshal([]string{"-test.run=^TestExecHelperProcess$", "--", mode})
	return map[string]string{"command": os.Args[0], "args": string(args), "timeout": "5s"}
}

func TestExecRotatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "calls.log")
	ex := &Exec{Env: []string{"ROTATE_HELPER=1", "ROTATE_LOG=" + log}}
	e := newEnv(t, map[string]Rotator{"exec": ex})
	e.mustPut(t, testPath, "exec-initial")
	e.mustPolicy(t, &Policy{Path: testPath, Every: 24 * time.Hour, Grace: time.Hour, Rotator: "exec", Config: helperConfig("ok")})
	r, err := e.m.RotateNow(ctx, testPath, "manual")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	e.clock.Add(time.Hour)
	if err := e.m.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if got, want := e.label(t, testPath, LabelCurrent), "exec-"+r.ID; got != want {
		t.Fatalf("CURRENT: got %q; want %q", got, want)
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var actions []string
	for _, l := range lines {
		actions = append(actions, strings.Fields(l)[0])
		if _, argv, _ := strings.Cut(l, "argv="); strings.Contains(argv, "exec-") {
			t.Fatalf("a value reached the argv: %q", argv)
		}
	}
	if got, want := strings.Join(actions, ","), "create,set,test,revoke"; got != want {
		t.Fatalf("actions: got %s; want %s", got, want)
	}
	if !strings.Contains(lines[3], "current=exec-initial pending=exec-"+r.ID) {
		t.Fatalf("revoke input: got %q; want the old value as current and the new as pending", lines[3])
	}
}

func TestExecRotatorFailures(t *testing.T) {
	tests := []struct {
		mode, timeout, wantErr string
	}{
		{"fail", "5s", "exited with status 3"},
		{"sleep", "200ms", "timed out after 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			ex := &Exec{Env: []string{"ROTATE_HELPER=1"}}
			c := helperConfig(tt.mode)
			c["timeout"] = tt.timeout
			req := &Request{RotationID: "rot_1", Path: testPath, Config: c, Current: []byte("exec-secret-value")}
			_, err := ex.Create(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Create: got %v; want an error with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "exec-secret-value") {
				t.Fatalf("Create error %q holds the value", err)
			}
		})
	}
}

func TestExecConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		c    map[string]string
		ok   bool
	}{
		{"absolute", map[string]string{"command": "/usr/bin/true"}, true},
		{"args", map[string]string{"command": "/usr/bin/true", "args": `["a","b c"]`}, true},
		{"relative", map[string]string{"command": "true"}, false},
		{"args not json", map[string]string{"command": "/usr/bin/true", "args": "a b"}, false},
		{"timeout too long", map[string]string{"command": "/usr/bin/true", "timeout": "1h"}, false},
		{"unknown key", map[string]string{"command": "/usr/bin/true", "shell": "sh"}, false},
	}
	for _, tt := range tests {
		if err := (&Exec{}).Validate(tt.c); (err == nil) != tt.ok {
			t.Errorf("%s: got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}
