//go:build !tokenward_client

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestClientLinksNoServerLibrary keeps the client build light: a package
// of the server's (storage drivers, metrics, the console's templates,
// pprof) linked into it again — by an import in a file without
// //go:build !tokenward_client, or a new import of a package the client
// uses — fails here, naming the package. Each costs every pipeline
// command its initialisation and part of its start-up (docs/benchmarks.md).
func TestClientLinksNoServerLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "tokenward_client", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, want := range []string{"github.com/spf13/cobra", "github.com/tokenward/tokenward/internal/client"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list -deps gave no %s; want the client's dependencies:\n%s", want, out)
		}
	}
	forbiddenPrefixes := []string{"modernc.org/", "github.com/jackc/", "github.com/VictoriaMetrics/", "golang.org/x/text/"}
	const internal = "github.com/tokenward/tokenward/internal/"
	forbidden := []string{"net/http/pprof", "html/template"}
	for _, p := range []string{"core", "httpapi", "sqlite", "postgres", "readcache", "console", "pgproxy", "pgerr", "pgrole", "dynamic", "loadgen", "migrate", "rotate/pgrotate", "vaultapi"} {
		forbidden = append(forbidden, internal+p)
	}
	for _, d := range deps {
		if slices.Contains(forbidden, d) || slices.ContainsFunc(forbiddenPrefixes, func(p string) bool { return strings.HasPrefix(d, p) }) {
			t.Errorf("the client build links %s; want none of the server's libraries (go list -tags tokenward_client -deps shows who imports it)", d)
		}
	}
}
