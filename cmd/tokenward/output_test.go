//go:build !tokenward_client

package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestOutput(t *testing.T) {
	header, rows := []string{"NAME", "VERSION"}, [][]string{{"STRIPE_KEY", "2"}, {"DB_URL", "10"}}
	table := "NAME        VERSION\nSTRIPE_KEY  2\nDB_URL      10\n"
	for _, tt := range []struct {
		name     string
		output   string
		terminal bool
		env      map[string]string
		print    func(x *call) error
		want     string
	}{
		{"table", "table", false, nil, func(x *call) error { return x.list(rows, header, rows) }, table},
		{"json", "json", false, nil, func(x *call) error { return x.list(map[string]string{"a": "<b>"}, header, rows) }, "{\n  \"a\": \"<b>\"\n}\n"},
		{"bold header on a terminal", "table", true, nil, func(x *call) error { return x.list(rows, header, rows) },
			"\x1b[1mNAME        VERSION\x1b[0m\nSTRIPE_KEY  2\nDB_URL      10\n"},
		{"NO_COLOR", "table", true, map[string]string{"NO_COLOR": "1"}, func(x *call) error { return x.list(rows, header, rows) }, table},
		{"TERM=dumb", "table", true, map[string]string{"TERM": "dumb"}, func(x *call) error { return x.list(rows, header, rows) }, table},
		{"detail", "table", false, nil, func(x *call) error { return x.detail(nil, "secret", "a/b/c", "grace", "-") },
			"FIELD   VALUE\nsecret  a/b/c\ngrace   -\n"},
		{"detail json", "json", false, nil, func(x *call) error { return x.detail([]int{1}, "secret", "a/b/c") }, "[\n  1\n]\n"},
		{"done", "table", false, nil, func(x *call) error { return x.done(1, "Wrote %s.", "a/b/c") }, "stderr:Wrote a/b/c.\n"},
		{"done json", "json", false, nil, func(x *call) error { return x.done(1, "Wrote %s.", "a/b/c") }, "1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
			isTerminal = func(io.Writer) bool { return tt.terminal }
			var out, errOut bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return tt.env[k] }}
			if err := tt.print(&call{Main: m, output: tt.output}); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if errOut.Len() > 0 {
				got += "stderr:" + errOut.String()
			}
			if got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestOrList(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", "a b": "a or b", "a b c": "a, b or c"} {
		if got := orList(strings.Fields(in)); got != want {
			t.Errorf("orList(%q) = %q; want %q", in, got, want)
		}
	}
}
