//go:build !tokenward_client

package main

import (
	"context"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/gateway"
)

// gatewayServerFeature serves the gateway's routes from the server's
// database (every server sharing it serves the same routes, each caching
// them behind the store's change clock).
func gatewayServerFeature(m *Main, f *pflag.FlagSet) func(context.Context, *serverRun) error {
	return func(ctx context.Context, r *serverRun) error {
		g := &gateway.Gateway{Routes: r.db, Secrets: r.core.GatewaySecrets(), Logger: r.logger.WithGroup("gateway")}
		if clock, ok := r.db.(tokenward.ChangeClock); ok {
			g.Clock = clock
		}
		r.api.Gateway = g
		r.onClose(g.Close)
		return nil
	}
}
