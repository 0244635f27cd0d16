//go:build !tokenward_client

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/httpapi"
	"github.com/tokenward/tokenward/internal/pgproxy"
)

// gatewayDBServerConfig is the database gateway's server configuration.
type gatewayDBServerConfig struct {
	Listen         string
	MaxSessions    int
	StartupTimeout time.Duration
	// MaxStartups and MaxStartupsPerAddr bound the connections not signed
	// in yet, overall and per source address (pgproxy.Proxy.MaxStartups).
	MaxStartups        int
	MaxStartupsPerAddr int
	// PeerID and PeerArgs (ID=HOST:PORT) number the servers behind one
	// address, so that a cancel request reaching the wrong one is passed
	// on (pgproxy.Proxy.PeerID); Validate fills Peers from PeerArgs.
	PeerID   int
	PeerArgs []string
	Peers    map[int]string
}

func (c *gatewayDBServerConfig) Validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return usageError("--gateway-db-listen %q: want host:port", c.Listen)
		}
	}
	if c.PeerID < 0 || c.PeerID > pgproxy.MaxPeerID {
		return usageError("--gateway-db-peer-id must be from 1 to %d (0: no peers)", pgproxy.MaxPeerID)
	}
	if len(c.PeerArgs) > 0 && c.PeerID == 0 {
		return usageError("--gateway-db-peer needs --gateway-db-peer-id: this server's own number")
	}
	c.Peers = map[int]string{}
	for _, a := range c.PeerArgs {
		id, addr, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(id)
		if !ok || err != nil || n < 1 || n > pgproxy.MaxPeerID {
			return usageError("--gateway-db-peer %q: want ID=HOST:PORT, ID from 1 to %d", a, pgproxy.MaxPeerID)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return usageError("--gateway-db-peer %q: want ID=HOST:PORT", a)
		}
		if _, dup := c.Peers[n]; dup || n == c.PeerID {
			return usageError("--gateway-db-peer %q: peer %d is named twice, or is this server (--gateway-db-peer-id)", a, n)
		}
		c.Peers[n] = addr
	}
	if c.MaxSessions < 1 || c.MaxSessions > 100_000 {
		return usageError("--gateway-db-max-sessions must be from 1 to 100000")
	}
	if c.MaxStartups < 1 || c.MaxStartups > 100_000 {
		return usageError("--gateway-db-max-startups must be from 1 to 100000")
	}
	if c.MaxStartupsPerAddr < 1 || c.MaxStartupsPerAddr > c.MaxStartups {
		return usageError("--gateway-db-max-startups-per-addr must be from 1 to --gateway-db-max-startups (%d)", c.MaxStartups)
	}
	if c.StartupTimeout < time.Second || c.StartupTimeout > 5*time.Minute {
		return usageError("--gateway-db-startup-timeout must be from 1s to 5m")
	}
	return nil
}

// gatewayDBServerFeature enables database routes (their management on every
// server, in the shared database) and, with --gateway-db-listen, serves
// them: a PostgreSQL wire-protocol listener where clients sign in with
// their token (internal/pgproxy).
func gatewayDBServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
	cfg := gatewayDBServerConfig{MaxSessions: pgproxy.DefaultMaxSessions, StartupTimeout: pgproxy.DefaultStartupTimeout,
		MaxStartups: pgproxy.DefaultMaxStartups, MaxStartupsPerAddr: pgproxy.DefaultMaxStartupsPerAddr}
	f.StringVar(&cfg.Listen, "gateway-db-listen", "", "serve database gateway routes (PostgreSQL protocol) on this host:port; TLS with --tls-cert, else loopback clients only")
	f.IntVar(&cfg.MaxSessions, "gateway-db-max-sessions", cfg.MaxSessions, "database gateway sessions (signed-in clients) served at once")
	f.IntVar(&cfg.MaxStartups, "gateway-db-max-startups", cfg.MaxStartups, "database gateway connections not signed in yet, at once")
	f.IntVar(&cfg.MaxStartupsPerAddr, "gateway-db-max-startups-per-addr", cfg.MaxStartupsPerAddr, "database gateway connections not signed in yet, at once, from one address (IPv6: one /64)")
	f.DurationVar(&cfg.StartupTimeout, "gateway-db-startup-timeout", cfg.StartupTimeout, "time a database client has to sign in (token check and upstream sign-in included)")
	f.IntVar(&cfg.PeerID, "gateway-db-peer-id", 0, fmt.Sprintf("this server's number among the servers behind one database gateway address (1 to %d), for --gateway-db-peer", pgproxy.MaxPeerID))
	f.StringArrayVar(&cfg.PeerArgs, "gateway-db-peer", nil, "another server's database gateway, ID=HOST:PORT (repeatable): a cancel request for its sessions is passed on to it")
	check := func(*serverConfig) error { return cfg.Validate() }
	return check, func(ctx context.Context, r *serverRun) error {
		r.core.DBGateway = &core.DBGateway{Store: r.db}
		if cfg.Listen == "" {
			return nil
		}
		p := &pgproxy.Proxy{Opener: limitedOpener{r.core, r.api}, Audit: r.api.Record, Logger: r.logger.WithGroup("gateway_db"),
			Now: r.core.Now, MaxSessions: cfg.MaxSessions, MaxStartups: cfg.MaxStartups, MaxStartupsPerAddr: cfg.MaxStartupsPerAddr,
			StartupTimeout: cfg.StartupTimeout, PeerID: cfg.PeerID, Peers: cfg.Peers}
		if r.cfg.TLSCert != "" {
			cert, err := loadTLSPair(r.cfg.TLSCert, r.cfg.TLSKey)
			if err != nil {
				return err
			}
			p.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.Serve(sctx, ln); err != nil {
				r.logger.Error("database gateway stopped", "err", err)
			}
		}()
		r.onClose(func() { stop(); <-done })
		if host, _, _ := net.SplitHostPort(ln.Addr().String()); p.TLSConfig == nil && !isLoopback(host) {
			r.logger.Warn("database gateway without TLS on a non-loopback address: only loopback clients can sign in; use --tls-cert/--tls-key", "addr", ln.Addr().String())
		}
		r.logger.Info("database gateway listening", "addr", ln.Addr().String(), "tls", p.TLSConfig != nil)
		return nil
	}
}

// limitedOpener opens routes behind the API's limit on failed
// authentications per address (httpapi.Server.LimitAuth): a token guesser
// gets one budget for both doors, not one per door. It is a
// pgproxy.Rechecker through the core.
type limitedOpener struct {
	*core.Core
	api *httpapi.Server
}

func (o limitedOpener) OpenDBRoute(ctx context.Context, route, token, ip string) (tok *tokenward.Token, r *tokenward.DBRoute, value []byte, err error) {
	err = o.api.LimitAuth(ctx, token, ip, func() (err error) {
		tok, r, value, err = o.Core.OpenDBRoute(ctx, route, token, ip)
		return err
	})
	return tok, r, value, err
}
