package buildinfo

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/tokenward/tokenward", Version: "v0.0.0-20261204150000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-12-04T15:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}}
	tests := []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  Info
	}{
		{"toolchain stamp only", stamped, "", "", "",
			Info{Version: "v0.0.0-20261204150000-0123456789ab+dirty", Commit: "0123456789abcdef", Modified: true, GoVersion: "go1.99.1", Date: "2026-12-04T15:00:00Z"}},
		{"ldflags override all", stamped, "v1.2.3", "fedcba", "2026-12-05T00:00:00Z",
			Info{Version: "v1.2.3", Commit: "fedcba", GoVersion: "go1.99.1", Date: "2026-12-05T00:00:00Z"}},
		{"ldflags version only", stamped, "v1.2.3", "", "",
			Info{Version: "v1.2.3", Commit: "0123456789abcdef", Modified: true, GoVersion: "go1.99.1", Date: "2026-12-04T15:00:00Z"}},
		{"devel without vcs", devel, "", "", "",
			Info{Version: "dev", GoVersion: "go1.99.1"}},
		{"no build info", nil, "", "", "",
			Info{Version: "dev", GoVersion: runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fromBuild(tt.bi, tt.version, tt.commit, tt.date); got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestLinkTimeOverride builds a program with the -X flags the Makefile
// uses, so a renamed variable fails here rather than silently in a release.
func TestLinkTimeOverride(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	const pkg = "github.com/tokenward/tokenward/internal/buildinfo"
	bin := filepath.Join(t.TempDir(), "printinfo")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version=v9.8.7 -X "+pkg+".commit=abc123 -X "+pkg+".date=2026-01-02T03:04:05Z",
		"./testdata/printinfo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := Info{Version: "v9.8.7", Commit: "abc123", GoVersion: runtime.Version(), Date: "2026-01-02T03:04:05Z"}
	if got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
}
