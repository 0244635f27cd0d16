// Package buildinfo says which build of tokenward is running: its version,
// commit, Go version and build date, for `tokenward version`, the health
// route and the tokenward_build_info metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time, each overriding what the Go toolchain stamped into the
// binary (see the Makefile's build target):
//
//	go build -ldflags "-X github.com/tokenward/tokenward/internal/buildinfo.version=v1.2.3
//	  -X github.com/tokenward/tokenward/internal/buildinfo.commit=0123abc
//	  -X github.com/tokenward/tokenward/internal/buildinfo.date=2026-12-04T16:00:00Z"
//
// An empty value counts as unset.
var version, commit, date string

// Info describes a build.
type Info struct {
	// Version is the -X version, else the module version the toolchain
	// stamped (a tag, or a pseudo-version when built in a git checkout),
	// else "dev".
	Version string `json:"version"`
	// Commit is the -X commit, else vcs.revision; empty when unknown.
	Commit string `json:"commit"`
	// Modified reports uncommitted changes in the checkout (vcs.modified);
	// false when the commit came from -X.
	Modified bool `json:"modified"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// Date is the -X date (the Makefile sets the build time), else the
	// commit time (vcs.time); empty when unknown.
	Date string `json:"date"`
}

// Get returns the running binary's Info.
var Get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, version, commit, date)
})

// fromBuild merges the link-time values over what bi (nil: none) holds.
func fromBuild(bi *debug.BuildInfo, version, commit, date string) Info {
	info := Info{Version: version, Commit: commit, Date: date}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	info.GoVersion = bi.GoVersion
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	if info.Version == "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	fromVCS := commit == ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if fromVCS {
				info.Commit = s.Value
			}
		case "vcs.modified":
			info.Modified = fromVCS && s.Value == "true"
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		}
	}
	return info
}
