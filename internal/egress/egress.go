// Package egress guards outbound HTTP requests to addresses that users
// choose (every webhook, through internal/webhook; later the gateway's
// upstreams). It refuses, when the connection is made — after DNS, so a name
// that resolves differently the second time cannot slip through — addresses
// no such request should reach: link-local ones (where cloud metadata
// services answer with the host's credentials), the unspecified address,
// multicast, and the other known metadata endpoints; and IPv6 addresses that
// reach an IPv4 address through a translation or tunnelling prefix (NAT64,
// 6to4, IPv4-compatible) when that IPv4 address is refused, not global, or
// cannot be told.
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
	// Without its zone: netip's Prefix.Contains and == never match a zoned
	// address, and the kernel ignores the zone of one that is not
	// link-local, so fd00:ec2::254%eth0 is fd00:ec2::254.
	addr = addr.Unmap().WithZone("")
	if why := translated(addr); why != "" {
		return why
	}
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

// Prefixes through which an IPv6 address stands for an IPv4 one. A NAT64
// gateway (or a 6to4 relay, or an automatic tunnel) on the server's network
// takes a connection to such an address to the IPv4 address it embeds, so
// the address is judged by that IPv4 address as well as by the IPv6 rules.
var (
	// nat64 is the well-known NAT64 prefix (RFC 6052); the IPv4 address is
	// the last 32 bits. RFC 6052 section 3.1 forbids it for non-global IPv4
	// addresses (translators must drop such packets), so a well-formed
	// destination never embeds one: those are refused, which keeps the
	// server's own loopback and private networks out of reach through a
	// translator that does not drop them.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// nat64Local is the local-use translation prefix (RFC 8215). The
	// operator chooses a prefix inside it of length /48 to /96, and where
	// the IPv4 address sits (RFC 6052 section 2.2) depends on that length,
	// which tokenward cannot know; non-global IPv4 addresses are allowed
	// there. An address whose IPv4 address cannot be told is refused.
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	// sixToFour is 6to4 (RFC 3056, deprecated by RFC 7526): the IPv4
	// address of the tunnel end is bits 16-47, and must be global.
	sixToFour = netip.MustParsePrefix("2002::/16")
	// compatible is the IPv4-compatible form (RFC 4291 section 2.5.5.1),
	// deprecated and used by no current transition mechanism, though old
	// automatic tunnels (Linux sit0) still send it to the IPv4 address.
	// Nothing legitimate is there: all of it but :: and ::1 is refused.
	compatible = netip.MustParsePrefix("::/96")
)

// nonGlobal4 holds the IPv4 special-purpose ranges that are not globally
// reachable (IANA IPv4 Special-Purpose Address Registry, RFC 6890), and
// multicast and the reserved 240/4: none is a legitimate destination
// through a NAT64 well-known prefix or 6to4.
var nonGlobal4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// translated returns why addr may not be dialed because of the IPv4
// address it reaches through a translation prefix, or "".
func translated(addr netip.Addr) string {
	if !addr.Is6() {
		return ""
	}
	b := addr.As16()
	var v4 netip.Addr
	switch {
	case nat64.Contains(addr):
		v4 = netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(addr):
		v4 = netip.AddrFrom4([4]byte(b[2:6]))
	case nat64Local.Contains(addr):
		return "a local-use NAT64 address (64:ff9b:1::/48), whose IPv4 address cannot be told"
	case compatible.Contains(addr) && !addr.IsUnspecified() && !addr.IsLoopback():
		return "an IPv4-compatible address (::/96, deprecated)"
	default:
		return ""
	}
	if why := Blocked(v4); why != "" {
		return fmt.Sprintf("a translation of %s, %s", v4, why)
	}
	for _, p := range nonGlobal4 {
		if p.Contains(v4) {
			return fmt.Sprintf("a translation of %s, which is not a global IPv4 address", v4)
		}
	}
	return ""
}
