// Package egress guards outbound HTTP requests to addresses that users
// choose (every webhook, through internal/webhook; later the gateway's
// upstreams). It refuses, when the connection is made — after DNS, so a name
// that resolves differently the second time cannot slip through — addresses
// no such request should reach: link-local ones (where cloud metadata
// services answer with the host's credentials), the unspecified address,
// multicast, and the other known metadata endpoints.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// metadata holds instance-metadata addresses outside the link-local ranges.
var metadata = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// Blocked returns why addr may not be dialed, or "" when it may.
// Loopback and private addresses are allowed: receivers on the same host or
// the internal network are what webhooks usually are.
func Blocked(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "not an IP address"
	case addr.IsUnspecified():
		return "the unspecified address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services answer there)"
	case addr.IsMulticast():
		return "a multicast address"
	}
	for _, m := range metadata {
		if addr == m {
			return "a cloud metadata address"
		}
	}
	return ""
}

// ErrBlocked is in the chain of every refusal by Control (and so of a
// request's error through Transport): retrying will not help.
var ErrBlocked = errors.New("tokenward does not connect there")

// Control is a net.Dialer Control function that refuses blocked addresses.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: %s: not an address and port: %w", network, ErrBlocked)
	}
	if why := Blocked(ap.Addr()); why != "" {
		return fmt.Errorf("egress: %s is %s; %w", ap.Addr(), why, ErrBlocked)
	}
	return nil
}

// Transport returns a copy of http.DefaultTransport whose connections go
// through Control, and never through a proxy from the environment (a proxy
// would make the dial address the proxy's, not the target's).
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: Control}
	t.DialContext = d.DialContext
	return t
}
