package tokenward

import "net/netip"

// SourceKey is what a per-client limit counts a client at address ip by:
// the address for IPv4 (an IPv4-mapped IPv6 address as its IPv4), the /64
// for IPv6, without a zone. One host commonly holds a whole /64, and would
// otherwise get a fresh budget per address. Anything that is not an
// address is its own key. The API's limits on failed authentications and
// leak reports and the database gateway's on connections still signing in
// count by it.
func SourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
