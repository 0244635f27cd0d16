//go:build !tokenward_client

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// binDir holds the real binaries, built once by TestMain: tokenward, the
// full build, which the scripts and most tests drive; tokenward-server,
// the same file under the name the client forwards to; and
// tokenward-client, the client build (forward.go).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenward-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Main(m) // stops the cluster pgtest.Shared started, if any
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinaries(dir string) error {
	for _, b := range []struct{ name, tags, cgo string }{{"tokenward", "", ""}, {"tokenward-client", "tokenward_client", "0"}} {
		build := exec.Command("go", "build", "-tags", b.tags, "-o", filepath.Join(dir, b.name), ".")
		build.Stderr = os.Stderr
		if b.cgo != "" { // as make build builds it
			build.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		}
		if err := build.Run(); err != nil {
			return fmt.Errorf("build %s: %w", b.name, err)
		}
	}
	return os.Link(filepath.Join(dir, "tokenward"), filepath.Join(dir, serverBinaryName))
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestScripts runs the CLI scripts in testdata/script against the real
// binary and real server processes.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			port := freePort(t)
			e.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			e.Setenv("PORT", fmt.Sprint(port))
			e.Setenv("TOKENWARD_ADDR", fmt.Sprintf("http://127.0.0.1:%d", port))
			e.Setenv("HOME", e.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitserver":   cmdWaitServer,
			"loadenv":      cmdLoadEnv,
			"noleak":       cmdNoLeak,
			"oidc":         cmdOIDC,
			"pl":           cmdPipelines,
			"auditsql":     cmdAuditSQL,
			"auditold":     cmdAuditOld,
			"auditrecv":    cmdAuditRecv,
			"auditsyslog":  cmdAuditSyslog,
			"auditcount":   cmdAuditCount,
			"auditedit":    cmdAuditEdit,
			"auditnoleak":  cmdAuditNoLeak,
			"auditwaitfor": cmdAuditWaitFor,
			"auditget":     cmdAuditGet,
			"hooks":        cmdHooks,
			"rotwait":      cmdRotWait,
			"tlscert":      cmdTLSCert,
			"upstream":     cmdUpstream,
		},
	})
}

// waitserver waits until the server at $TOKENWARD_ADDR answers /v1/health.
func cmdWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	addr := ts.Getenv("TOKENWARD_ADDR")
	hc := http.DefaultClient
	if ca := ts.Getenv("TOKENWARD_CACERT"); ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ts.ReadFile(ca))) {
			ts.Fatalf("waitserver: no certificate in %s", ca)
		}
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(addr + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("server at %s did not come up", addr)
}

// tlscert DIR writes server.crt and server.key for 127.0.0.1, signed by a
// test CA in ca.crt, into DIR (for --tls-cert/--tls-key and
// TOKENWARD_CACERT).
func cmdTLSCert(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: tlscert DIR")
	}
	dir := ts.MkAbs(args[0])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ts.Fatalf("%v", err)
	}
	writeTestCert(scriptTB{ts: ts}, dir)
}

// loadenv FILE sets every KEY=VALUE line of FILE in the environment.
func cmdLoadEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: loadenv FILE")
	}
	for _, line := range strings.Split(ts.ReadFile(args[0]), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			ts.Setenv(k, v)
		}
	}
}

// noleak VALUE FILE... fails if any file (or any file in a directory)
// holds VALUE raw, in base64 or in hex.
func cmdNoLeak(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: noleak VALUE FILE...")
	}
	value := []byte(args[0])
	forms := [][]byte{value, []byte(base64.StdEncoding.EncodeToString(value)), []byte(hex.EncodeToString(value))}
	checked, leaks := 0, 0
	for _, arg := range args[1:] {
		filepath.Walk(ts.MkAbs(arg), func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				ts.Fatalf("%v", err)
			}
			checked++
			for _, f := range forms {
				if bytes.Contains(b, f) {
					leaks++
					if !neg {
						ts.Fatalf("%s holds the secret value (as %q)", path, f[:min(len(f), 6)])
					}
				}
			}
			return nil
		})
	}
	if checked == 0 {
		ts.Fatalf("noleak checked no files")
	}
	if neg && leaks == 0 {
		ts.Fatalf("noleak: want a leak, found none in %d files", checked)
	}
	ts.Logf("noleak: %d files, %d leaks", checked, leaks)
}
