//go:build !tokenward_client

package main

import (
	"maps"
	"strings"
	"testing"
)

func TestGatewayDBServerConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*gatewayDBServerConfig)
		want  string // substring of the error; "" for none
		peers map[int]string
	}{
		{"defaults", func(c *gatewayDBServerConfig) {}, "", map[int]string{}},
		{"listen", func(c *gatewayDBServerConfig) { c.Listen = "6432" }, "--gateway-db-listen", nil},
		{"sessions", func(c *gatewayDBServerConfig) { c.MaxSessions = 0 }, "--gateway-db-max-sessions", nil},
		{"startups", func(c *gatewayDBServerConfig) { c.MaxStartups = 0 }, "--gateway-db-max-startups", nil},
		{"startups per address", func(c *gatewayDBServerConfig) { c.MaxStartupsPerAddr = 0 }, "--gateway-db-max-startups-per-addr", nil},
		{"more per address than overall", func(c *gatewayDBServerConfig) { c.MaxStartups, c.MaxStartupsPerAddr = 8, 9 }, "--gateway-db-max-startups-per-addr", nil},
		{"peers", func(c *gatewayDBServerConfig) {
			c.PeerID, c.PeerArgs = 1, []string{"2=10.0.0.2:6432", "255=[::1]:6432"}
		}, "", map[int]string{2: "10.0.0.2:6432", 255: "[::1]:6432"}},
		{"a number alone", func(c *gatewayDBServerConfig) { c.PeerID = 7 }, "", map[int]string{}},
		{"peer id range", func(c *gatewayDBServerConfig) { c.PeerID = 256 }, "from 1 to 255", nil},
		{"negative peer id", func(c *gatewayDBServerConfig) { c.PeerID = -1 }, "from 1 to 255", nil},
		{"peers without a number", func(c *gatewayDBServerConfig) { c.PeerArgs = []string{"2=h:1"} }, "needs --gateway-db-peer-id", nil},
		{"no id", func(c *gatewayDBServerConfig) { c.PeerID, c.PeerArgs = 1, []string{"h:1"} }, "want ID=HOST:PORT", nil},
		{"id zero", func(c *gatewayDBServerConfig) { c.PeerID, c.PeerArgs = 1, []string{"0=h:1"} }, "want ID=HOST:PORT", nil},
		{"no port", func(c *gatewayDBServerConfig) { c.PeerID, c.PeerArgs = 1, []string{"2=h"} }, "want ID=HOST:PORT", nil},
		{"twice", func(c *gatewayDBServerConfig) { c.PeerID, c.PeerArgs = 1, []string{"2=h:1", "2=g:1"} }, "named twice", nil},
		{"itself", func(c *gatewayDBServerConfig) { c.PeerID, c.PeerArgs = 1, []string{"1=h:1"} }, "is this server", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := gatewayDBServerConfig{MaxSessions: 100, StartupTimeout: 10e9, MaxStartups: 256, MaxStartupsPerAddr: 32}
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error about %q", err, tc.want)
			case tc.want == "" && !maps.Equal(c.Peers, tc.peers):
				t.Fatalf("peers: got %v; want %v", c.Peers, tc.peers)
			}
		})
	}
}
