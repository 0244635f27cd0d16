package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/tokenward/tokenward/internal/egress"
)

// cgnat is the shared address space (RFC 6598), internal to carriers and
// clouds (Alibaba's metadata service answers in it).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// ownNetwork returns why the gateway does not connect to addr unless a
// route allows it: what internal/egress refuses everywhere (link-local,
// metadata, unspecified, multicast), and, unlike a webhook, the server's
// own networks (loopback, private, shared address space), so that a route
// is not a way into them.
func ownNetwork(addr netip.Addr) string {
	addr = addr.Unmap()
	if why := egress.Blocked(addr); why != "" {
		return why
	}
	switch {
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address"
	case cgnat.Contains(addr):
		return "a shared (carrier-grade NAT) address"
	}
	return ""
}

// dialer connects only to addresses ownNetwork allows or nets hold,
// checked at connect time (after DNS), as internal/egress does.
func dialer(nets []netip.Prefix) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("gateway: %s: not an address and port: %w", network, egress.ErrBlocked)
		}
		addr := ap.Addr().Unmap()
		for _, p := range nets {
			if p.Contains(addr) {
				return nil
			}
		}
		if why := ownNetwork(addr); why != "" {
			return fmt.Errorf("gateway: %s is %s (a route may allow it with --allow-net); %w", addr, why, egress.ErrBlocked)
		}
		return nil
	}}
}
