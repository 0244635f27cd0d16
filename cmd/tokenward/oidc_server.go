//go:build !tokenward_client

package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
)

// oidcServerConfig is the server configuration of just-in-time CI
// credentials.
type oidcServerConfig struct {
	JWKSFiles     []string // ISSUER=FILE
	MaxTTL        time.Duration
	Leeway        time.Duration
	DebugBindings bool
}

// Validate checks the flags and returns the issuer → JWKS file map.
func (c *oidcServerConfig) Validate() (map[string]string, error) {
	if c.MaxTTL <= 0 || c.MaxTTL > oidc.MaxMaxTTL {
		return nil, usageError("--oidc-max-ttl must be from 1s to %s", rotate.FormatDuration(oidc.MaxMaxTTL))
	}
	if c.Leeway < 0 || c.Leeway > 10*time.Minute {
		return nil, usageError("--oidc-leeway must be from 0 to 10m")
	}
	files := map[string]string{}
	for _, kv := range c.JWKSFiles {
		// The issuer is a URL with "://", so split at the last '='.
		i := strings.LastIndexByte(kv, '=')
		if i <= 0 || i == len(kv)-1 {
			return nil, usageError("--oidc-jwks-file %q: want ISSUER=FILE", kv)
		}
		iss, file := kv[:i], kv[i+1:]
		if err := oidc.ValidateIssuer(iss); err != nil {
			return nil, usageError("--oidc-jwks-file: %v", err)
		}
		if _, dup := files[iss]; dup {
			return nil, usageError("--oidc-jwks-file: issuer %s given twice", iss)
		}
		if _, err := os.Stat(file); err != nil {
			return nil, usageError("--oidc-jwks-file %s: %v", iss, err)
		}
		files[iss] = file
	}
	return files, nil
}

// oidcServerFeature enables bindings and the identity-token exchange on
// the server, backed by the server's database (replays are refused across
// every server sharing it).
func oidcServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
	cfg := oidcServerConfig{MaxTTL: oidc.DefaultMaxTTL, Leeway: oidc.DefaultLeeway}
	f.StringArrayVar(&cfg.JWKSFiles, "oidc-jwks-file", nil, "ISSUER=FILE: verify ISSUER's identity tokens with this JWKS file instead of discovery (air-gapped; repeatable; re-read on key refresh)")
	f.DurationVar(&cfg.MaxTTL, "oidc-max-ttl", cfg.MaxTTL, "cap on binding TTLs and just-in-time token lifetimes")
	f.DurationVar(&cfg.Leeway, "oidc-leeway", cfg.Leeway, "clock skew allowed on identity tokens' exp, nbf and iat")
	f.BoolVar(&cfg.DebugBindings, "debug-bindings", false, "tell OIDC callers why their identity token was refused (setup only: it is an oracle)")
	var files map[string]string // issuer → JWKS file, from the check
	check := func(*serverConfig) error {
		var err error
		files, err = cfg.Validate()
		return err
	}
	return check, func(ctx context.Context, r *serverRun) error {
		v := oidc.NewVerifier()
		v.Leeway = cfg.Leeway
		v.DebugBindings = cfg.DebugBindings
		r.core.OIDC = &core.OIDC{Store: r.db, Verifier: v, MaxTTL: cfg.MaxTTL, JWKSFiles: files}
		if cfg.DebugBindings {
			r.logger.Warn("--debug-bindings is on: OIDC callers are told why their identity token was refused; turn it off once bindings work")
		}
		for iss, file := range files {
			r.logger.Info("oidc: static keys", "issuer", iss, "jwks_file", file)
		}
		return nil
	}
}
