// Command httpbench measures the real server under an external load
// generator: it builds tokenward, starts `tokenward server` (default flags:
// audit on, SQLite) on a throwaway data directory, and runs wrk against
// secret reads, environment fetches and reads with a just-in-time (OIDC)
// token, each beside a bare net/http handler answering as many bytes as
// tokenward's answer, the two alternating so both see the same machine
// state. It installs nothing: wrk
// must be on PATH. Everything listens on loopback.
//
//	go run ./internal/httpapi/cmd/httpbench            # make bench-http
//	go run ./internal/httpapi/cmd/httpbench -profile cpu.pprof
//
// -profile also starts the server with --metrics-addr and --pprof and saves
// a CPU profile of it taken during the first tokenward run (choose which
// with -targets and -c). -soak 10m loads reads at c=64 instead and prints
// the server's RSS and Go heap every 30 s. -rounds 5 measures each row five
// times, tokenward and the bare handler alternating which goes first, and
// prints the medians with the range of the rounds' ratios: on a shared
// 2-core machine one run's ratio swings by about ±0.05. -vs B starts a
// second server from binary B and measures it in the same rounds (the
// bare handler, A and B in each of their six orders in turn): B/A, the
// median of the rounds' quotients, compares two builds under the same
// machine state, which separate runs cannot. Use -rounds 6 (or 12) with
// -vs, so every order counts as often.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/loadgen"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("d", 5*time.Second, "duration of each wrk run")
	conns := flag.String("c", "1,16,64", "concurrencies (wrk -c)")
	only := flag.String("targets", "read,env,jit,gw", "targets to measure: read, env, jit, gw")
	profile := flag.String("profile", "", "save a CPU profile of the server during its first run to this file")
	bin := flag.String("bin", "", "benchmark this tokenward binary instead of building ./cmd/tokenward (e.g. an older build, to compare)")
	soak := flag.Duration("soak", 0, "instead of the table: reads at c=64 for this long, printing the server's RSS and Go heap every 30s")
	rounds := flag.Int("rounds", 1, "measure each row this many times, going through every order of the arms (2 orders, 6 with -vs); print medians and the ratios' range")
	vs := flag.String("vs", "", "also benchmark this second tokenward binary (B) on its own server, in the same rounds: the table adds B's ratio and B/A")
	flag.Parse()
	if *rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", *rounds)
	}
	if *vs != "" && *soak > 0 {
		return errors.New("-vs compares two builds in a table; -soak loads one server")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not on PATH; install it (Debian/Ubuntu: apt-get install wrk). This benchmark installs nothing itself")
	}
	var cs []int
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("-c %q: want comma-separated positive numbers", *conns)
		}
		cs = append(cs, n)
	}

	dir, err := os.MkdirTemp("", "tokenward-httpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := startServer(ctx, dir, *bin, *profile != "" || *soak > 0)
	if err != nil {
		return err
	}
	defer srv.stop()
	bare, err := startBare()
	if err != nil {
		return err
	}
	defer bare.Close()
	bareURL := "http://" + bare.Addr().String() + "/"
	targets, err := setup(ctx, srv, dir, bareURL, strings.Contains(*only, "gw") && *soak == 0)
	if err != nil {
		return err
	}
	if *soak > 0 {
		return soakRun(ctx, srv, wrk, targets[0], *soak)
	}

	arms := []arm{{srv: srv, targets: targets}}
	if *vs != "" {
		srvB, err := startServer(ctx, filepath.Join(dir, "b"), *vs, false)
		if err != nil {
			return err
		}
		defer srvB.stop()
		tsB, err := setup(ctx, srvB, filepath.Join(dir, "b"), bareURL, strings.Contains(*only, "gw"))
		if err != nil {
			return err
		}
		arms = append(arms, arm{srv: srvB, targets: tsB})
	}
	pids := make([]string, len(arms))
	for i, a := range arms {
		pids[i] = strconv.Itoa(a.srv.cmd.Process.Pid)
	}
	fmt.Printf("wrk -t2 -cN -d%s --latency (-t1 at c=1); server pid %s; bare handler in this process (pid %d)\n", *duration, strings.Join(pids, ", "), os.Getpid())
	if len(arms) == 1 {
		fmt.Println("| target | answer bytes | c | tokenward req/s | bare req/s | ratio | tokenward p99 | bare p99 | CPU µs/req, tokenward / bare | machine idle %, tokenward / bare | server RSS MiB |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	} else {
		fmt.Printf("A: %s; B: %s\n", cmp.Or(*bin, "this checkout"), *vs)
		fmt.Println("| target | answer bytes | c | A req/s | B req/s | bare req/s | ratio A | ratio B | B/A | p99 A / B / bare | CPU µs/req A / B / bare | machine idle % A / B / bare |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	}
	round, profiled := 0, false
	for _, c := range cs {
		for ti, t := range targets {
			if !strings.Contains(*only, t.name) {
				continue
			}
			// runs[0] is the bare handler, runs[1+i] arms[i]; each measures
			// one wrk run into res[...].
			res := make([]armResult, 1+len(arms))
			measure := func(i int, pid int, url, script string, profile string) error {
				before, err := loadgen.ProcCPU(pid)
				if err != nil {
					return err
				}
				machineBefore, err := loadgen.ReadCPUTimes()
				if err != nil {
					return err
				}
				var profErr chan error
				if profile != "" {
					profErr = make(chan error, 1)
					go func() { profErr <- arms[0].srv.saveProfile(profile, *duration-time.Second) }()
				}
				r, err := runWrk(ctx, wrk, c, *duration, url, script)
				if err != nil {
					return err
				}
				machineAfter, err := loadgen.ReadCPUTimes()
				if err != nil {
					return err
				}
				after, err := loadgen.ProcCPU(pid)
				res[i] = armResult{r, float64((after - before).Microseconds()) / (r.rps * duration.Seconds()), 100 * loadgen.IdleShare(machineBefore, machineAfter)}
				if profErr != nil {
					if perr := <-profErr; perr != nil {
						return perr
					}
				}
				return err
			}
			runs := []func() error{func() error { return measure(0, os.Getpid(), bareURL+strconv.Itoa(t.size), "", "") }}
			for i, a := range arms {
				runs = append(runs, func() error {
					prof := ""
					if i == 0 && *profile != "" && !profiled {
						profiled, prof = true, *profile
					}
					at := a.targets[ti]
					return measure(1+i, a.srv.cmd.Process.Pid, at.url, at.script, prof)
				})
			}
			var rs []roundResult
			orders := permutations(len(runs))
			for range *rounds {
				// The rounds go through every order of the arms, so each
				// is first, and right after each other one, equally often
				// over len(orders) rounds: a tokenward run can leave work
				// behind (the kernel's writeback of its database, for
				// one) that slows whichever run comes next, and an A/A
				// whose rounds only rotated favoured A.
				for _, k := range orders[round%len(orders)] {
					if err := runs[k](); err != nil {
						return err
					}
				}
				round++
				rs = append(rs, roundResult{bare: res[0], tw: slices.Clone(res[1:])})
			}
			rss, _, _ := loadgen.ProcMemory(arms[0].srv.cmd.Process.Pid)
			m := medianRound(rs)
			if len(arms) == 1 {
				fmt.Printf("| %s | %d | %d | %.0f | %.0f | **%.2f**%s | %s | %s | %.0f / %.0f | %.0f / %.0f | %.0f |\n",
					t.name, t.size, c, m.tw[0].rps, m.bare.rps, medianOf(rs, ratioOf(0)), ratioRange(rs, ratioOf(0)), m.tw[0].p99, m.bare.p99, m.tw[0].cpu, m.bare.cpu, m.tw[0].idle, m.bare.idle, float64(rss)/(1<<20))
				continue
			}
			fmt.Printf("| %s | %d | %d | %.0f | %.0f | %.0f | %.2f%s | %.2f%s | **%.3f**%s | %s / %s / %s | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f |\n",
				t.name, t.size, c, m.tw[0].rps, m.tw[1].rps, m.bare.rps,
				medianOf(rs, ratioOf(0)), ratioRange(rs, ratioOf(0)), medianOf(rs, ratioOf(1)), ratioRange(rs, ratioOf(1)), medianOf(rs, bOverA), ratioRange(rs, bOverA),
				m.tw[0].p99, m.tw[1].p99, m.bare.p99, m.tw[0].cpu, m.tw[1].cpu, m.bare.cpu, m.tw[0].idle, m.tw[1].idle, m.bare.idle)
		}
	}
	if *rounds > 1 {
		fmt.Printf("each row: the medians of %d rounds, each figure its own (a ratio is the median of the rounds' ratios); the ratios' range in parentheses\n", *rounds)
	}
	for i, a := range arms {
		_, hwm, _ := loadgen.ProcMemory(a.srv.cmd.Process.Pid)
		name := ""
		if len(arms) > 1 {
			name = " " + "AB"[i:i+1]
		}
		fmt.Printf("server%s peak RSS %.0f MiB\n", name, float64(hwm)/(1<<20))
	}
	if *profile != "" {
		fmt.Printf("CPU profile of the first run: %s (go tool pprof -top %s)\n", *profile, *profile)
	}
	return nil
}

// arm is one tokenward server under test, with its targets (setup's, in
// setup's order).
type arm struct {
	srv     *server
	targets []target
}

// armResult is one wrk run, the CPU its server spent per request and the
// share of the machine's CPU time left idle meanwhile (with 16 or more
// connections a server that keeps both CPUs busy leaves little; see
// docs/benchmarks.md on where the rest goes).
type armResult struct {
	wrkResult
	cpu  float64 // µs per request
	idle float64 // % of the machine's CPU time
}

// roundResult is one round of a row: the bare handler's run and each
// arm's.
type roundResult struct {
	bare armResult
	tw   []armResult
}

// ratioOf is arm i's req/s over the bare handler's, per round.
func ratioOf(i int) func(roundResult) float64 {
	return func(r roundResult) float64 { return r.tw[i].rps / r.bare.rps }
}

// bOverA is arm B's req/s over arm A's, per round: the two builds
// compared under the same machine state.
func bOverA(r roundResult) float64 { return r.tw[1].rps / r.tw[0].rps }

// medianOf is the median of f over the rounds.
func medianOf(rs []roundResult, f func(roundResult) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

// medianRound is the rounds' medians, each figure taken on its own: a
// row's ratio is medianOf(rs, ratioOf(i)), not the quotient of the median
// req/s.
func medianRound(rs []roundResult) roundResult {
	m := func(f func(roundResult) armResult) armResult {
		return armResult{
			wrkResult{rps: medianOf(rs, func(r roundResult) float64 { return f(r).rps }), p99: time.Duration(medianOf(rs, func(r roundResult) float64 { return float64(f(r).p99) }))},
			medianOf(rs, func(r roundResult) float64 { return f(r).cpu }),
			medianOf(rs, func(r roundResult) float64 { return f(r).idle }),
		}
	}
	out := roundResult{bare: m(func(r roundResult) armResult { return r.bare })}
	for i := range rs[0].tw {
		out.tw = append(out.tw, m(func(r roundResult) armResult { return r.tw[i] }))
	}
	return out
}

// median of xs, the mean of the two middle ones of an even count (xs is
// reordered).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	return (xs[(n-1)/2] + xs[n/2]) / 2
}

// permutations are the orders of 0..n-1, those starting with 0 first:
// [0 1] [1 0] for two arms.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for first := range n {
		for _, rest := range permutations(n - 1) {
			p := []int{first}
			for _, x := range rest {
				if x >= first {
					x++
				}
				p = append(p, x)
			}
			out = append(out, p)
		}
	}
	return out
}

// ratioRange is " (min–max)" of f over the rounds, or "" for one round.
func ratioRange(rs []roundResult, f func(roundResult) float64) string {
	if len(rs) < 2 {
		return ""
	}
	lo, hi := f(rs[0]), f(rs[0])
	for _, r := range rs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
}

// soakRun loads t at c=64 for d and samples the server's RSS and Go heap
// (from /metrics) every 30s: both should stay flat.
func soakRun(ctx context.Context, srv *server, wrk string, t target, d time.Duration) error {
	done := make(chan error, 1)
	var res wrkResult
	go func() {
		var err error
		res, err = runWrk(ctx, wrk, 64, d, t.url, t.script)
		done <- err
	}()
	fmt.Printf("soak: %s at c=64 for %s\n| elapsed | RSS MiB | Go heap in use MiB |\n| --- | --- | --- |\n", t.name, d)
	start, tick := time.Now(), time.NewTicker(30*time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			fmt.Printf("%.0f req/s, p99 %s over the soak\n", res.rps, res.p99)
			return nil
		case <-tick.C:
			rss, _, _ := loadgen.ProcMemory(srv.cmd.Process.Pid)
			heap, err := srv.metric("go_memstats_heap_inuse_bytes")
			if err != nil {
				return err
			}
			fmt.Printf("| %s | %.1f | %.1f |\n", time.Since(start).Round(time.Second), float64(rss)/(1<<20), heap/(1<<20))
		}
	}
}

// metric reads one unlabelled gauge from the server's /metrics.
func (s *server) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + s.metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// server is a running `tokenward server`.
type server struct {
	bin, dataDir string
	addr         string // http://127.0.0.1:PORT
	metricsAddr  string // host:port, with -profile only
	admin        string // the admin token from init
	cmd          *exec.Cmd
	log          *os.File
}

func startServer(ctx context.Context, dir, bin string, pprof bool) (*server, error) {
	s := &server{bin: bin, dataDir: filepath.Join(dir, "data")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if bin == "" {
		s.bin = filepath.Join(dir, "tokenward")
		build := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/tokenward") // #nosec G204 -- a benchmark builds and runs the server and wrk it measures with
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("go build (run from the repository root): %w", err)
		}
	}
	out, err := s.cli(ctx, nil, "init", "--data-dir", s.dataDir)
	if err != nil {
		return nil, err
	}
	s.admin = strings.TrimPrefix(strings.TrimSpace(out), "TOKENWARD_TOKEN=")
	args := []string{"server", "--data-dir", s.dataDir, "--addr", "127.0.0.1:0", "--log-level", "warn"}
	if pprof {
		if s.metricsAddr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--metrics-addr", s.metricsAddr, "--pprof")
	}
	s.cmd = exec.CommandContext(ctx, s.bin, args...) // #nosec G204 -- a benchmark builds and runs the server and wrk it measures with
	s.cmd.Env = cleanEnv()
	// Its log (e.g. the requests wrk leaves unfinished when it stops) is
	// kept out of the table.
	if s.log, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return nil, err
	}
	s.cmd.Stderr = s.log
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "TOKENWARD_ADDR="); ok {
			s.addr = a
			break
		}
	}
	if s.addr == "" {
		s.stop()
		log, _ := os.ReadFile(s.log.Name())
		return nil, fmt.Errorf("server did not print its address: %s", log)
	}
	go io.Copy(io.Discard, stdout)
	return s, nil
}

func (s *server) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	}
}

// cli runs a tokenward command as the admin against the server.
func (s *server) cli(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, args...) // #nosec G204 -- a benchmark builds and runs the server and wrk it measures with
	cmd.Env = append(cleanEnv(), "TOKENWARD_ADDR="+s.addr, "TOKENWARD_TOKEN="+s.admin)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("tokenward %s: %v: %s", args[0], err, stderr.Bytes())
	}
	return string(out), nil
}

// saveProfile fetches a CPU profile of d from the server's metrics listener.
func (s *server) saveProfile(path string, d time.Duration) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.metricsAddr, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cleanEnv is this process's environment without TOKENWARD_ variables, so
// a user's own server or token cannot leak into the benchmark.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOKENWARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// target is one URL wrk loads, with the Lua script that sets its token.
type target struct {
	name, url, script string
	size              int // bytes of tokenward's answer, which the bare handler matches
}

// setup creates what the targets read: bench/prod/K (100 bytes), bench/ci
// with 20 secrets of 100 bytes, a service token reading bench/*/*, and a
// binding whose just-in-time token reads bench/prod/*. With gw, also a
// gateway route "bare" to the bare handler (bareURL), injecting
// bench/prod/K as a bearer token, which the service token may call: the gw
// target is a call through the gateway beside the same call made directly.
func setup(ctx context.Context, s *server, dir, bareURL string, gw bool) ([]target, error) {
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 100) }
	if _, err := s.cli(ctx, nil, "project", "create", "bench", "--envs", "prod,ci"); err != nil {
		return nil, err
	}
	if _, err := s.cli(ctx, value(0), "secret", "set", "bench/prod/K"); err != nil {
		return nil, err
	}
	for i := range 20 {
		if _, err := s.cli(ctx, value(i), "secret", "set", fmt.Sprintf("bench/ci/S%02d", i)); err != nil {
			return nil, err
		}
	}
	grants := []string{"token", "create", "--name", "bench", "--grant", "read:bench/*/*"}
	if gw {
		if _, err := s.cli(ctx, nil, "gateway", "route", "create", "bare", "--upstream", strings.TrimSuffix(bareURL, "/"),
			"--secret", "bench/prod/K", "--inject", "header:Authorization=Bearer {{value}}", "--allow", "GET /**", "--allow-net", "127.0.0.0/8"); err != nil {
			return nil, err
		}
		grants = append(grants, "--grant", "gateway:bare")
	}
	svc, err := s.cli(ctx, nil, grants...)
	if err != nil {
		return nil, err
	}
	jit, err := jitToken(ctx, s)
	if err != nil {
		return nil, err
	}
	script := func(name, token string) (string, error) {
		path := filepath.Join(dir, name+".lua")
		lua := fmt.Sprintf("wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", strings.TrimSpace(token))
		return path, os.WriteFile(path, []byte(lua), 0o600) // the token stays out of wrk's argv
	}
	svcScript, err := script("service", svc)
	if err != nil {
		return nil, err
	}
	jitScript, err := script("jit", jit)
	if err != nil {
		return nil, err
	}
	ts := []target{
		{name: "read", url: s.addr + "/v1/secrets/bench/prod/K", script: svcScript},
		{name: "env", url: s.addr + "/v1/values/bench/ci", script: svcScript},
		{name: "jit", url: s.addr + "/v1/secrets/bench/prod/K", script: jitScript},
	}
	if gw {
		// 322 bytes from the upstream, the size of a secret read's answer.
		ts = append(ts, target{name: "gw", url: s.addr + "/gw/bare/322", script: svcScript})
	}
	tokens := map[string]string{svcScript: svc, jitScript: jit}
	for i := range ts {
		if ts[i].size, err = answerSize(ctx, ts[i].url, strings.TrimSpace(tokens[ts[i].script])); err != nil {
			return nil, fmt.Errorf("%s: %w", ts[i].name, err)
		}
	}
	return ts, nil
}

// benchTB lets oidctest, written for tests, run in this program.
type benchTB struct{ testing.TB } // nil: only the methods below are used

func (benchTB) Helper()                           {}
func (benchTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (benchTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (benchTB) Cleanup(func())                    {} // the process ends with the benchmark

// jitToken starts a fake OIDC issuer, binds it, and logs in with a signed
// GitHub-shaped identity token, as a CI job would.
func jitToken(ctx context.Context, s *server) (string, error) {
	iss := oidctest.NewIssuer(benchTB{})
	if _, err := s.cli(ctx, nil, "binding", "create", "bench-jit", "--issuer", iss.URL, "--audience", "tokenward",
		"--claim", "repository=acme/payments", "--grant", "read:bench/prod/*", "--ttl", "1h"); err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"binding": "bench-jit", "jwt": iss.Sign(benchTB{}, oidctest.GitHubClaims(iss.URL, "tokenward", time.Now()))})
	resp, err := http.Post(s.addr+"/v1/auth/oidc/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(out.Secret, "twj_") {
		return "", fmt.Errorf("oidc login: %s, %v", resp.Status, err)
	}
	return out.Secret, nil
}

// answerSize is the length of tokenward's answer to a GET of url.
func answerSize(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET answered %s", resp.Status)
	}
	return int(n), err
}

// maxBare is the largest answer the bare handler makes.
const maxBare = 1 << 20

// startBare answers GET /N with N bytes (at most maxBare; 100 for any other
// path): the ceiling of net/http on this machine for an answer of that
// size. Each target is compared with the bare handler answering as many
// bytes as tokenward does, so a 6 kB environment is not set against 100
// bytes.
func startBare() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := bytes.Repeat([]byte("x"), maxBare)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // #nosec G114 -- the bare net/http baseline of a loopback benchmark; timeouts would skew the baseline
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil || n < 0 || n > maxBare {
			n = 100
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body[:n])
	}))
	return ln, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type wrkResult struct {
	rps float64
	p99 time.Duration
}

var (
	reqsRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re    = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)\b`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(ctx context.Context, wrk string, c int, d time.Duration, url, script string) (wrkResult, error) {
	// wrk wants at least one connection per thread.
	args := []string{"-t" + strconv.Itoa(min(2, c)), "-c" + strconv.Itoa(c), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if script != "" {
		args = append(args, "-s", script)
	}
	out, err := exec.CommandContext(ctx, wrk, append(args, url)...).CombinedOutput() // #nosec G204 -- a benchmark builds and runs the server and wrk it measures with
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if m := non2xxRe.FindSubmatch(out); m != nil {
		return wrkResult{}, fmt.Errorf("wrk against %s: %s answers were not 2xx", url, m[1])
	}
	m, p := reqsRe.FindSubmatch(out), p99Re.FindSubmatch(out)
	if m == nil || p == nil {
		return wrkResult{}, fmt.Errorf("cannot read wrk's output: %s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	v, _ := strconv.ParseFloat(string(p[1]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(p[2])]
	r.p99 = time.Duration(v * float64(unit)).Round(10 * time.Microsecond)
	return r, nil
}
