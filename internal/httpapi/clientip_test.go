package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies: the header is ignored", nil, "203.0.113.9:5000", []string{"198.51.100.7"}, "203.0.113.9"},
		{"untrusted peer: the header is ignored", proxies, "203.0.113.9:5000", []string{"198.51.100.7"}, "203.0.113.9"},
		{"trusted peer: the client it saw", proxies, "10.1.2.3:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"a forged left part is not believed", proxies, "10.1.2.3:5000", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"two trusted hops", proxies, "10.1.2.3:5000", []string{"198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"several header lines", proxies, "10.1.2.3:5000", []string{"1.2.3.4", "198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"only trusted hops: the peer", proxies, "10.1.2.3:5000", []string{"10.4.4.4"}, "10.1.2.3"},
		{"no header: the peer", proxies, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"malformed hop: the peer", proxies, "10.1.2.3:5000", []string{"198.51.100.7, not-an-ip"}, "10.1.2.3"},
		{"empty hop: the peer", proxies, "10.1.2.3:5000", []string{"198.51.100.7,"}, "10.1.2.3"},
		{"IPv6 proxy and client", proxies, "[fd00::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.1.2.3]:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		// Some balancers (Azure Application Gateway) write the client's
		// port too: still that client, not the balancer.
		{"hop with a port", proxies, "10.1.2.3:5000", []string{"198.51.100.7:51234"}, "198.51.100.7"},
		{"IPv6 hop with a port", proxies, "10.1.2.3:5000", []string{"[2001:db8::7]:51234"}, "2001:db8::7"},
		{"trusted hop with a port", proxies, "10.1.2.3:5000", []string{"198.51.100.7, 10.9.9.9:443"}, "198.51.100.7"},
		{"a port alone: the peer", proxies, "10.1.2.3:5000", []string{":51234"}, "10.1.2.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{TrustedProxies: tc.trusted}
			r := httptest.NewRequest("GET", "/v1/health", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(r); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

// FuzzClientIP: any header gives the peer or a well-formed address that is
// not a trusted proxy.
func FuzzClientIP(f *testing.F) {
	f.Add("198.51.100.7, 10.9.9.9")
	f.Add("::ffff:1.2.3.4,,")
	f.Add("fe80::1%eth0")
	f.Add("198.51.100.7:51234, [2001:db8::7]:1")
	s := &Server{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest("GET", "/v1/health", nil)
		r.RemoteAddr = "10.1.2.3:5000"
		r.Header.Set("X-Forwarded-For", xff)
		got := s.clientIP(r)
		if got == "10.1.2.3" {
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || s.trusted(a.String()) {
			t.Fatalf("clientIP(%q) = %q: neither the peer nor an untrusted address", xff, got)
		}
	})
}
