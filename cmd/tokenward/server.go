//go:build !tokenward_client

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/postgres"
)

// serverConfig is the server's configuration, from flags.
type serverConfig struct {
	DataDir      string
	Addr         string
	KeyFile      string
	TLSCert      string
	TLSKey       string
	Dev          bool
	MaxValueSize int
	LogLevel     string
	LogFormat    string
	Storage      storageConfig
	// TrustedProxies are --trusted-proxy: load balancers whose
	// X-Forwarded-For names the client.
	TrustedProxies []string
	// RateLimit is --rate-limit: each token's request rate ("" or "0": none).
	RateLimit string
}

func defaultServerConfig() serverConfig {
	return serverConfig{DataDir: "./data", Addr: DefaultAddr, MaxValueSize: core.DefaultMaxValueSize, LogLevel: "info", LogFormat: "text"}
}

// Validate checks the configuration before anything starts.
func (c *serverConfig) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	if c.MaxValueSize < 1 || c.MaxValueSize > 16<<20 {
		return usageError("--max-value-size must be from 1 byte to 16 MiB")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return usageError("--log-format must be text or json")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return usageError("--log-level must be debug, info, warn or error")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return usageError("--addr %q: want host:port", c.Addr)
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if _, err := httpapi.ParseLimit(c.RateLimit); err != nil {
		return usageError("--rate-limit: %s", tokenward.ErrorMessage(err))
	}
	if c.Dev && c.Storage.URL != "" {
		return usageError("--dev runs on a throwaway SQLite file; drop --storage (or unset TOKENWARD_STORAGE)")
	}
	return c.Storage.validate()
}

// trustedProxies parses --trusted-proxy: CIDR prefixes or single addresses.
func (c *serverConfig) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range c.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, usageError("--trusted-proxy %q: want an address or a CIDR prefix such as 10.0.0.0/8", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (c *serverConfig) logger(m *Main) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(m.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(m.Stderr, opts))
}

// serverRun is what a feature needs to attach itself to a starting server.
type serverRun struct {
	cfg    *serverConfig
	db     storage
	core   *core.Core
	api    *httpapi.Server
	logger *slog.Logger
	// metrics is what /metrics serves (set by the audit feature, which
	// runs first); features add their own metrics to it.
	metrics *httpapi.Metrics
	// closers run in reverse order at shutdown, after the HTTP server stops.
	closers []func()
	// lead runs the jobs that must run once across the servers sharing a
	// database (the rotation scheduler, hygiene, announcements) while this
	// server leads; features add them.
	lead *leadership
}

// onClose registers fn to run at shutdown.
func (r *serverRun) onClose(fn func()) { r.closers = append(r.closers, fn) }

// serverFeature registers a feature's server flags and returns its check
// and its starter. The check runs before the server opens anything: a bad
// flag is a usage error (exit 2) before the master key is read or the store
// opened. The starter runs after the store and engine are open and before
// the listener accepts requests.
type serverFeature func(m *Main, flags *pflag.FlagSet) (check func(cfg *serverConfig) error, start func(ctx context.Context, r *serverRun) error)

// startOnly is a feature with no check of its own: it checks its flags, if
// any, when it starts.
func startOnly(feat func(m *Main, flags *pflag.FlagSet) func(ctx context.Context, r *serverRun) error) serverFeature {
	return func(m *Main, flags *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
		return func(*serverConfig) error { return nil }, feat(m, flags)
	}
}

// serverFeatures lists the features the server starts, in order. Each is
// defined in its feature's own file.
var serverFeatures = []serverFeature{
	// one line per feature
	auditServerFeature, // first: the audit hook and metrics registry others build on
	oidcServerFeature,
	monitorServerFeature, // after the audit feature: it wraps api.Audit
	rotationServerFeature,
	dynamicServerFeature, // after the audit feature: it records the sweep's revocations
	startOnly(gatewayServerFeature),
	gatewayDBServerFeature,
}

func (m *Main) newServerCommand() *cobra.Command {
	cfg := defaultServerConfig()
	var checks []func(*serverConfig) error
	var starters []func(context.Context, *serverRun) error
	cmd := &cobra.Command{
		Use:     "server",
		Short:   "Serve the API (SQLite in the data directory)",
		Example: "  tokenward server --data-dir /var/lib/tokenward --addr 0.0.0.0:8750 --tls-cert cert.pem --tls-key key.pem\n  tokenward server --dev",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			for _, check := range checks {
				if err := check(&cfg); err != nil {
					return err
				}
			}
			return m.runServer(cmd.Context(), cfg, starters)
		},
	}
	f := cmd.Flags()
	for _, feat := range serverFeatures {
		check, start := feat(m, f)
		checks, starters = append(checks, check), append(starters, start)
	}
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory made by `tokenward init`")
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on")
	f.StringVar(&cfg.KeyFile, "master-key-file", "", "master key file (default: DATA-DIR/master.key; TOKENWARD_MASTER_KEY wins)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&cfg.Dev, "dev", false, "throwaway data directory and key; prints the address and an admin token")
	f.IntVar(&cfg.MaxValueSize, "max-value-size", cfg.MaxValueSize, "largest secret value in bytes")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	f.StringArrayVar(&cfg.TrustedProxies, "trusted-proxy", nil, "a load balancer or proxy (address or CIDR, repeatable) whose X-Forwarded-For names the client; default: none, the peer is the client")
	f.StringVar(&cfg.RateLimit, "rate-limit", "0", "each token's requests per server, as N/s or N/m with an optional ,burst=B (e.g. 50/s,burst=100); 0: no limit")
	cfg.Storage.register(m, f)
	return cmd
}

// serverGCPercent is the server's GOGC when the environment sets none. A
// server's live heap is small (tens of MiB) and its garbage is per-request,
// so Go's default of 100 spent about a tenth of a read's CPU in the
// collector; 400 trades some RSS (about 40 → 55 MiB under load, measured
// with httpbench) for that CPU. GOGC and GOMEMLIMIT still win.
const serverGCPercent = 400

func (m *Main) runServer(ctx context.Context, cfg serverConfig, starters []func(context.Context, *serverRun) error) error {
	if m.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	logger := cfg.logger(m)
	// The certificate is loaded before anything starts: an unusable pair
	// stops the server before it opens the store, leads or announces an
	// address, not once it serves.
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := loadTLSPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	var devToken string
	if cfg.Dev {
		dir, release, err := makeDevDir(logger)
		if err != nil {
			return err
		}
		defer release()
		cfg.DataDir = filepath.Join(dir, "data")
		if devToken, err = m.initDataDir(ctx, cfg.DataDir, storageConfig{}); err != nil {
			return err
		}
		cfg.KeyFile = ""
	}
	key, err := m.loadMasterKey(cfg.DataDir, cfg.KeyFile)
	if err != nil {
		return err
	}
	if cfg.Storage.isPostgres() {
		if _, err := os.Stat(cfg.DataDir); err != nil {
			return fmt.Errorf("no data directory %s for the audit key and journal (run `tokenward init --storage … --data-dir %s` first)", cfg.DataDir, cfg.DataDir)
		}
	} else if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFileName)); err == nil {
		release, err := lockDataDir(cfg.DataDir, false)
		if err != nil {
			return err
		}
		defer release()
	}
	db, err := cfg.Storage.open(ctx, cfg.DataDir, false)
	if err != nil {
		return err
	}
	defer db.Close()
	// Every server on a PostgreSQL database holds its server lock shared;
	// a server whose lock a migration took while its connection was down
	// stops (postgres.DB.LockServer); ctx's cause says why.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if pg, ok := db.(pgStorage); ok {
		pg.Logger = logger.WithGroup("postgres")
		release, err := pg.LockServer(ctx, stop)
		if err != nil {
			return err
		}
		defer release()
	}
	c, err := core.New(ctx, db, key)
	if err != nil {
		return err
	}
	c.Logger = logger.WithGroup("core")
	c.MaxValueSize = cfg.MaxValueSize
	c.Start()
	defer c.Close()

	api := httpapi.NewServer(c, logger)
	api.TrustedProxies, _ = cfg.trustedProxies()          // checked by Validate
	api.TokenLimit, _ = httpapi.ParseLimit(cfg.RateLimit) // checked by Validate
	api.AuthFailureLimit = httpapi.DefaultAuthFailureLimit
	run := &serverRun{cfg: &cfg, db: db, core: c, api: api, logger: logger, lead: &leadership{log: logger.WithGroup("leader")}}
	defer func() {
		for i := len(run.closers) - 1; i >= 0; i-- {
			run.closers[i]()
		}
	}()
	for _, start := range starters {
		if err := start(ctx, run); err != nil {
			return err
		}
	}
	if run.metrics != nil {
		api.RegisterReadiness(run.metrics)
		run.lead.registerMetrics(run.metrics)
	}
	// The leader's jobs stop, and are waited for, before the closers run.
	leadCtx, stopLeading := context.WithCancel(ctx)
	leadDone := make(chan struct{})
	go func() {
		defer close(leadDone)
		run.lead.run(leadCtx, electorOf(db))
	}()
	defer func() { stopLeading(); <-leadDone }()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	addr := scheme + "://" + ln.Addr().String()
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); scheme == "http" && !isLoopback(host) {
		logger.Warn("SERVING PLAIN HTTP ON A NON-LOOPBACK ADDRESS: tokens and secrets cross the network unencrypted; use --tls-cert/--tls-key or a TLS proxy", "addr", ln.Addr().String())
	}
	srv := httpapi.NewHTTPServer(cfg.Addr, withConsole(api, db, logger), logger)
	srv.TLSConfig = tlsConfig
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	logger.Info("serving", "addr", addr, "data_dir", cfg.DataDir)
	fmt.Fprintf(m.Stdout, "TOKENWARD_ADDR=%s\n", addr)
	if cfg.Dev {
		fmt.Fprintf(m.Stdout, "TOKENWARD_TOKEN=%s\n", devToken)
		fmt.Fprintln(m.Stderr, "Development server: data is thrown away on exit. Paste the two lines above into your shell with `export`.")
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := context.Cause(ctx); errors.Is(err, postgres.ErrMigrating) {
		return err
	}
	return nil
}

// loadTLSPair is tls.LoadX509KeyPair with the private key read as every
// private file of an install is (tokenward.ReadPrivateFile: not readable
// by group or others).
func loadTLSPair(certFile, keyFile string) (tls.Certificate, error) {
	keyPEM, err := tokenward.ReadPrivateFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(certFile) // #nosec G304 -- the operator's --tls-cert
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
