package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/scan"
)

// serverFromEnv is the --server value that means TOKENWARD_ADDR (or the
// default address), as every other client command finds the server.
const serverFromEnv = "env"

// newScanDeps builds the server-assisted parts of scan (--server,
// --remediate) on an API client configured like every client command:
// TOKENWARD_TOKEN or --token-file, TOKENWARD_CACERT, and the address from
// --server URL or, with --server env, TOKENWARD_ADDR.
var newScanDeps = func(m *Main, f *scanFlags) (scanDeps, error) {
	mm := *m
	if f.server != serverFromEnv {
		u, err := url.Parse(f.server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return scanDeps{}, fmt.Errorf("want an http:// or https:// URL")
		}
		mm.Getenv = func(k string) string {
			if k == "TOKENWARD_ADDR" {
				return f.server
			}
			return m.Getenv(k)
		}
	}
	c, err := mm.client(&clientFlags{tokenFile: f.tokenFile})
	if err != nil {
		return scanDeps{}, err
	}
	return scanDeps{fingerprints: c, remediator: scanRemediator{c}}, nil
}

// scanRemediator acts on leaks through the API, so every action is
// authorized, audited and (report-leak) alerted by the server.
type scanRemediator struct{ c *client.Client }

var _ scan.Remediator = scanRemediator{}

// ReportLeakedToken reports the token at POST /v1/tokens/report-leak, which
// revokes it and alerts its owner. The server answers the same for a token
// it does not know.
func (r scanRemediator) ReportLeakedToken(ctx context.Context, token string) error {
	return r.c.ReportLeak(ctx, token)
}

// RotateLeakedSecret rotates path now under its rotation policy; a secret
// without one cannot be rotated by the server and is left to a person.
func (r scanRemediator) RotateLeakedSecret(ctx context.Context, path string) error {
	if _, err := r.c.RotationPolicy(ctx, path); err != nil {
		switch tokenward.ErrorCode(err) {
		case tokenward.ENOTFOUND:
			return fmt.Errorf("no rotation policy for %s; rotate it by hand", path)
		case tokenward.EUNAVAILABLE:
			return fmt.Errorf("the server does not rotate secrets; rotate %s by hand", path)
		}
		return cliError(err)
	}
	rot, err := r.c.RotateNow(ctx, path)
	if err != nil {
		return cliError(err)
	}
	if rot.Step == rotate.StepFailed {
		return fmt.Errorf("rotation %s failed: %s", rot.ID, strings.TrimSpace(rot.Error))
	}
	return nil
}
