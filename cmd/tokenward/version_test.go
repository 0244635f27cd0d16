//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/tokenward/tokenward/internal/buildinfo"
)

func TestVersionText(t *testing.T) {
	tests := []struct {
		info versionInfo
		want string
	}{
		{versionInfo{buildinfo.Info{Version: "v1.2.3", Commit: "0123abc", GoVersion: "go1.99.1", Date: "2026-12-04T15:00:00Z"}, "full"},
			"tokenward v1.2.3\ncommit: 0123abc\ngo:     go1.99.1\nbuilt:  2026-12-04T15:00:00Z\nbuild:  full\n"},
		{versionInfo{buildinfo.Info{Version: "v0.0.0-20261204150000-0123abc+dirty", Commit: "0123abc", Modified: true, GoVersion: "go1.99.1"}, "client"},
			"tokenward v0.0.0-20261204150000-0123abc+dirty\ncommit: 0123abc (modified)\ngo:     go1.99.1\nbuilt:  -\nbuild:  client\n"},
		{versionInfo{buildinfo.Info{Version: "dev", GoVersion: "go1.99.1"}, "full"},
			"tokenward dev\ncommit: -\ngo:     go1.99.1\nbuilt:  -\nbuild:  full\n"},
	}
	for _, tt := range tests {
		if got := versionText(tt.info); got != tt.want {
			t.Errorf("versionText(%+v) = %q; want %q", tt.info, got, tt.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		m := &Main{Stdin: &bytes.Buffer{}, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		err := m.Run(context.Background(), args)
		return out.String(), err
	}
	text := versionText(versionInfo{buildinfo.Get(), "full"})
	for _, args := range [][]string{{"version"}, {"version", "-o", "text"}, {"--version"}} {
		got, err := run(args...)
		if err != nil || got != text {
			t.Errorf("%q: got %q, %v; want %q, nil", args, got, err, text)
		}
	}
	got, err := run("version", "-o", "json")
	if err != nil {
		t.Fatalf("version -o json: %v", err)
	}
	var info versionInfo
	if err := json.Unmarshal([]byte(got), &info); err != nil {
		t.Fatalf("version -o json printed %q: %v", got, err)
	}
	if want := (versionInfo{buildinfo.Get(), "full"}); info != want || info.Version == "" || info.GoVersion == "" {
		t.Errorf("version -o json: got %+v; want %+v, with a version and Go version", info, want)
	}
	if _, err := run("version", "-o", "yaml"); exitCode(err) != 2 {
		t.Errorf("version -o yaml: got %v (exit %d); want a usage error (exit 2)", err, exitCode(err))
	}
}
