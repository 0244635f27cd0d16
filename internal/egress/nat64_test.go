package egress_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tokenward/tokenward/internal/egress"
)

// TestBlockedTranslated: an IPv6 address that carries an IPv4 address
// through a translation or tunnelling prefix is judged by that IPv4 address
// too, as an IPv4-mapped one is; a NAT64 gateway on the path would otherwise
// take the server to the metadata service or its own loopback.
func TestBlockedTranslated(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		// Well-known NAT64 prefix 64:ff9b::/96 (RFC 6052).
		{"64:ff9b::a9fe:a9fe", true},        // 169.254.169.254, metadata
		{"64:ff9b::169.254.0.1", true},      // link-local
		{"64:ff9b::7f00:1", true},           // 127.0.0.1: RFC 6052 forbids non-global here
		{"64:ff9b::a01:203", true},          // 10.1.2.3
		{"64:ff9b::c0a8:10a", true},         // 192.168.1.10
		{"64:ff9b::6464:64c8", true},        // 100.100.100.200, Alibaba metadata
		{"64:ff9b::6440:1", true},           // 100.64.0.1, shared address space
		{"64:ff9b::", true},                 // 0.0.0.0
		{"64:ff9b::e000:1", true},           // 224.0.0.1, multicast
		{"64:ff9b::ffff:ffff", true},        // broadcast
		{"64:ff9b::5db8:d822", false},       // 93.184.216.34: ordinary NAT64 use
		{"64:ff9b::8.8.8.8", false},         // ordinary NAT64 use
		{"64:ff9b:0:0:1::a9fe:a9fe", false}, // outside the /96: no embedding defined
		// Local-use prefix 64:ff9b:1::/48 (RFC 8215): where the IPv4
		// address sits depends on a prefix length only the operator knows.
		{"64:ff9b:1::a9fe:a9fe", true},
		{"64:ff9b:1::7f00:1", true},
		{"64:ff9b:1:a9fe:a9:fe00::", true}, // 169.254.169.254 in a /48 NSP
		{"64:ff9b:1::5db8:d822", true},
		// 6to4 2002::/16 (RFC 3056): IPv4 in bits 16-47.
		{"2002:a9fe:a9fe::1", true},
		{"2002:7f00:1::1", true},
		{"2002:a01:203::1", true},
		{"2002:5db8:d822::1", false},
		// IPv4-compatible ::/96 (deprecated, RFC 4291 2.5.5.1).
		{"::a9fe:a9fe", true},
		{"::7f00:1", true},
		{"::5db8:d822", true},
		{"::1", false}, // loopback, allowed as before
		{"::", true},
		// IPv4-mapped, as before.
		{"::ffff:169.254.169.254", true},
		{"::ffff:127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := egress.Blocked(netip.MustParseAddr(tt.addr))
			if (got != "") != tt.blocked {
				t.Errorf("got %q; want blocked=%v", got, tt.blocked)
			}
		})
	}
}

// TestControlTranslated: the dialer refuses a NAT64 address of the
// metadata service, naming the embedded address.
func TestControlTranslated(t *testing.T) {
	err := egress.Control("tcp6", "[64:ff9b::a9fe:a9fe]:80", nil)
	if err == nil || !errors.Is(err, egress.ErrBlocked) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Fatalf("got %v; want an ErrBlocked naming 169.254.169.254", err)
	}
}

// TestControlZoned: an IPv6 zone (a URL may carry one: http://[addr%25eth0]/)
// does not take an address out of the prefix and equality checks; the kernel
// ignores the zone of an address that is not link-local.
func TestControlZoned(t *testing.T) {
	for _, address := range []string{
		"[64:ff9b::a9fe:a9fe%eth0]:80",
		"[fd00:ec2::254%eth0]:80",
		"[2002:a9fe:a9fe::1%1]:80",
		"[::a9fe:a9fe%lo]:80",
	} {
		t.Run(address, func(t *testing.T) {
			err := egress.Control("tcp6", address, nil)
			if err == nil || !errors.Is(err, egress.ErrBlocked) {
				t.Fatalf("got %v; want ErrBlocked", err)
			}
		})
	}
}
