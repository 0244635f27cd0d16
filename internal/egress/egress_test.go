package egress_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/egress"
)

func TestBlocked(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"169.254.169.254", true}, // AWS, GCP, Azure metadata
		{"169.254.0.1", true},
		{"::ffff:169.254.169.254", true}, // IPv4-mapped
		{"fe80::1", true},
		{"fd00:ec2::254", true},
		{"100.100.100.200", true},
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"ff02::1", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"192.168.1.10", false},
		{"fd00:ec2::253", false},
		{"93.184.216.34", false},
		{"2606:2800:220:1:248:1893:25c8:1946", false},
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

func TestControl(t *testing.T) {
	tests := []struct {
		address string
		wantErr string
	}{
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1%eth0]:443", "link-local"},
		{"[fd00:ec2::254]:80", "metadata"},
		{"nonsense", "not an address"},
		{"127.0.0.1:8080", ""},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := egress.Control("tcp", tt.address, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, egress.ErrBlocked) {
				t.Fatalf("got %v; want an ErrBlocked with %q", err, tt.wantErr)
			}
		})
	}
}

// TestTransportRefusesMetadata: a request to the metadata address fails
// before any packet is sent (Control runs before connect), with the reason.
func TestTransportRefusesMetadata(t *testing.T) {
	c := &http.Client{Transport: egress.Transport(), Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://169.254.169.254/latest/meta-data/", nil)
	_, err := c.Do(req)
	if err == nil || !strings.Contains(err.Error(), "tokenward does not connect there") || !errors.Is(err, egress.ErrBlocked) {
		t.Fatalf("got %v; want the egress refusal, ErrBlocked in its chain", err)
	}
}
