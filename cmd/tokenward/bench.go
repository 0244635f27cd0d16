//go:build !tokenward_client

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/buildinfo"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/loadgen"
)

// benchFlags are the flags of `tokenward bench`.
type benchFlags struct {
	client      clientFlags
	duration    time.Duration
	requests    int64
	concurrency int
	mix         string
	targets     []string
	start       string
	servers     int
	baseline    bool
	json        bool
}

// benchPlan is benchFlags checked: what the run will do.
type benchPlan struct {
	mix         loadgen.Mix
	duration    time.Duration // 0 when requests bounds the run
	requests    int64
	start       string // "", "sqlite" or "postgres"
	storage     string // the PostgreSQL URL of --start: never printed
	servers     int
	targets     []string // --target URLs; empty: TOKENWARD_ADDR, or the servers started
	concurrency int
}

const maxBenchConcurrency = 10000

// plan checks the flags; changed reports whether a flag was given. getenv
// supplies TOKENWARD_STORAGE for `--start postgres`.
func (f *benchFlags) plan(changed func(string) bool, getenv func(string) string) (*benchPlan, error) {
	p := &benchPlan{duration: f.duration, requests: f.requests, servers: f.servers, concurrency: f.concurrency}
	mix, err := loadgen.ParseMix(f.mix)
	if err != nil {
		return nil, usageError("--mix: %v", strings.TrimPrefix(err.Error(), "mix: "))
	}
	p.mix = mix
	switch {
	case changed("duration") && changed("requests"):
		return nil, usageError("give --duration or --requests, not both")
	case changed("requests"):
		if f.requests < 1 {
			return nil, usageError("--requests must be at least 1")
		}
		p.duration = 0
	default:
		if f.duration <= 0 {
			return nil, usageError("--duration must be positive")
		}
		p.requests = 0
	}
	if f.concurrency < 1 || f.concurrency > maxBenchConcurrency {
		return nil, usageError("--concurrency must be from 1 to %d", maxBenchConcurrency)
	}
	switch s := f.start; {
	case s == "":
	case s == "sqlite":
		p.start = "sqlite"
	case s == "postgres":
		p.start, p.storage = "postgres", getenv("TOKENWARD_STORAGE")
		if !isPostgresURL(p.storage) {
			return nil, usageError("--start postgres takes the database from TOKENWARD_STORAGE, which holds no postgres:// URL")
		}
	case isPostgresURL(s):
		p.start, p.storage = "postgres", s
	default:
		// Not echoed: a mistyped database URL may hold a password.
		return nil, usageError("--start: want sqlite, postgres (the URL in TOKENWARD_STORAGE) or a postgres:// URL")
	}
	if f.servers < 1 {
		return nil, usageError("--servers must be at least 1")
	}
	if f.servers > 1 && p.start != "postgres" {
		return nil, usageError("--servers %d needs --start postgres://…: only servers sharing one PostgreSQL database can act as one", f.servers)
	}
	if p.start != "" && len(f.targets) > 0 {
		return nil, usageError("give --start or --target, not both")
	}
	for _, t := range f.targets {
		if _, err := client.New(t, ""); err != nil {
			return nil, usageError("--target: %v", err)
		}
		p.targets = append(p.targets, strings.TrimRight(t, "/"))
	}
	return p, nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func (m *Main) newBenchCommand() *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a server with a mix of API operations and measure it",
		Long: `bench drives a tokenward server with --concurrency clients, each sending a
weighted mix of operations (--mix op=weight,...):

  read     GET one secret of 100 bytes
  env      GET a whole environment of 20 secrets (what ` + "`tokenward run`" + ` fetches)
  write    PUT a new version of a secret (one secret per client)
  token    POST a new token
  oidc     exchange a CI identity token for a just-in-time token (bench runs
           its own OIDC issuer on loopback and binds it)
  gateway  not available in this build

for --duration or --requests, and prints requests/s, p50/p90/p99/max
latency and errors per operation (text, or --json with a stable schema to
compare commits). It sets up its own project, tokens and binding under a
unique bench-XXXXXXXX prefix and removes them at the end: tokens revoked,
binding deleted, project retired (its secrets archived for a day, then
purged; the empty project stays).

The server is TOKENWARD_ADDR with TOKENWARD_TOKEN (an admin token, which
creates the fixture; the load itself uses a narrower token), or the
--target servers of one install (clients spread round-robin), or servers it
starts itself as child processes of this binary: --start sqlite (a
throwaway data directory), or --start postgres://… with --servers N on that
database (an empty one: bench runs init). For servers it started it also
prints their CPU time and RSS. --baseline also drives a bare net/http
handler answering 100 bytes with the same clients in the same run, and
prints every operation's requests/s as a ratio to it.`,
		Example: "  tokenward bench --start sqlite --duration 10s --mix read=70,env=20,write=10 --baseline\n" +
			"  tokenward bench --requests 100000 --concurrency 16 --json > before.json\n" +
			"  tokenward bench --start postgres://tokenward@db/bench --servers 3 --mix read=90,write=10",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.plan(cmd.Flags().Changed, m.Getenv)
			if err != nil {
				return err
			}
			return m.bench(cmd.Context(), f, p)
		},
	}
	f.register(cmd)
	return cmd
}

func (f *benchFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", 30*time.Second, "how long to send requests")
	fl.Int64Var(&f.requests, "requests", 0, "send this many requests in all instead of running for --duration")
	fl.IntVar(&f.concurrency, "concurrency", 64, "concurrent clients, each with one request in flight")
	fl.StringVar(&f.mix, "mix", "read=90,write=10", "operations and their weights: read, env, write, token, oidc, gateway")
	fl.StringArrayVar(&f.targets, "target", nil, "server base URL to load (repeatable; default TOKENWARD_ADDR)")
	fl.StringVar(&f.start, "start", "", "start the servers: sqlite, or postgres://… (or postgres: the URL in TOKENWARD_STORAGE)")
	fl.IntVar(&f.servers, "servers", 1, "with --start postgres://…: how many servers to start on the database")
	fl.BoolVar(&f.baseline, "baseline", false, "also measure a bare net/http handler and print ratios to it")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	f.client.register(cmd, false)
}

// bench runs the plan and prints its report. Failed requests make the
// command fail after the report is printed.
func (m *Main) bench(ctx context.Context, f *benchFlags, p *benchPlan) (err error) {
	var admin *client.Client
	targets := p.targets
	var servers []*benchServer
	if p.start != "" {
		dir, err := os.MkdirTemp("", "tokenward-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		var token string
		servers, token, err = startBenchServers(ctx, dir, p.storage, p.servers)
		defer func() {
			for _, s := range servers {
				s.stop()
			}
		}()
		if err != nil {
			return err
		}
		targets = nil
		for _, s := range servers {
			targets = append(targets, s.addr)
		}
		if admin, err = client.New(targets[0], token); err != nil {
			return err
		}
	} else {
		if admin, err = m.client(&f.client); err != nil {
			return err
		}
		if len(targets) == 0 {
			targets = []string{admin.Addr}
		} else {
			admin.Addr = targets[0]
		}
	}

	fixture, err := loadgen.Setup(ctx, admin, p.mix)
	if err != nil {
		return fmt.Errorf("setting up the benchmark: %w", cliError(err))
	}
	defer func() {
		if cerr := fixture.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
			fmt.Fprintf(m.Stderr, "warning: cleaning up %s: %v\n", fixture.Prefix, cerr)
		}
	}()

	machine := loadgen.ReadMachine()
	started := time.Now().UTC()
	cfg := loadgen.Config{
		Mix:         p.mix,
		Concurrency: p.concurrency,
		Duration:    p.duration,
		Requests:    p.requests,
		Build:       fixture.Builders(p.mix, targets),
		Client:      loadgen.NewHTTPClient(p.concurrency, tlsConfigOf(admin)),
	}
	var before *loadgen.Result
	if f.baseline {
		if before, err = runBaseline(ctx, cfg, false); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	cpuBefore := make([]time.Duration, len(servers))
	for i, s := range servers {
		if cpuBefore[i], err = loadgen.ProcCPU(s.pid()); err != nil {
			return err
		}
	}
	clientBefore, err := loadgen.ProcCPU(os.Getpid())
	if err != nil {
		return err
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	var requests int64
	for _, st := range res.Ops {
		requests += st.Requests.Load()
	}
	serverStats := []loadgen.ProcStats{}
	for i, s := range servers {
		ps, err := loadgen.NewProcStats(s.pid(), cpuBefore[i], res.Elapsed, requests)
		if err != nil {
			return err
		}
		serverStats = append(serverStats, ps)
	}
	clientStats, err := loadgen.NewProcStats(os.Getpid(), clientBefore, res.Elapsed, requests)
	if err != nil {
		return err
	}

	var base *loadgen.Result
	if f.baseline {
		if base, err = runBaseline(ctx, cfg, true); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		if before != nil {
			base = loadgen.Merge(before, base)
		}
		if base.Ops[loadgen.OpBaseline].Errors.Load() > 0 {
			return errors.New("baseline: the bare handler answered errors")
		}
	}

	r := loadgen.NewReport(p.mix, res, base)
	r.StartedAt = started
	r.Build = buildinfo.Get()
	r.Machine = machine
	r.Config = loadgen.RunConfig{
		Mix:             p.mix.String(),
		Concurrency:     p.concurrency,
		DurationSeconds: p.duration.Seconds(),
		Requests:        p.requests,
		Targets:         len(targets),
		Start:           p.start,
		Servers:         len(servers),
	}
	r.Servers = serverStats
	r.Client = clientStats
	if f.json {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = loadgen.WriteText(m.Stdout, r)
	}
	if err != nil {
		return err
	}
	if r.Total.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed", r.Total.Errors, r.Total.Requests)
	}
	return nil
}

// tlsConfigOf is the TLS configuration of c's HTTP client (the private CA
// of TOKENWARD_CACERT), for the load's own client; nil for the defaults.
func tlsConfigOf(c *client.Client) *tls.Config {
	if c.HTTP == nil {
		return nil
	}
	if t, ok := c.HTTP.Transport.(*http.Transport); ok {
		return t.TLSClientConfig
	}
	return nil
}

// runBaseline drives the bare handler with the clients of cfg for the first
// half of its duration or requests, or with second the rest: the baseline
// runs half before the load and half after, so a change in the machine's
// load during the run weighs on both. A first half of no request is nil.
func runBaseline(ctx context.Context, cfg loadgen.Config, second bool) (*loadgen.Result, error) {
	d, n := cfg.Duration/2, cfg.Requests/2
	if second {
		d, n = cfg.Duration-d, cfg.Requests-n
	}
	if d == 0 && n == 0 {
		return nil, nil
	}
	b, err := loadgen.StartBaseline()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	cfg.Duration, cfg.Requests = d, n
	cfg.Mix, cfg.Build = b.Mix(), b.Builders()
	return loadgen.Run(ctx, cfg)
}
