package oidc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/oidc/oidctest"
)

// TestKeysUnreachable: when the issuer's keys cannot be fetched (its JWKS
// endpoint is down) and no cached key is the token's, the exchange is
// unavailable (503, "try again"), as for a failed discovery, not the
// token refused as if it were bad. A token naming a key the verifier holds
// is still refused on its own merits, and the outage does not lift the
// refresh limit.
func TestKeysUnreachable(t *testing.T) {
	f := newFixture(t)
	f.v.MinRefreshInterval = 30 * time.Second
	var down atomic.Bool
	var fetches atomic.Int64
	var url string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, url, url+"/jwks")
		case "/jwks":
			fetches.Add(1)
			if down.Load() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			w.Write(f.iss.JWKS())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	url = srv.URL
	b := f.githubBinding(t)
	b.Issuer = url
	bs := []*oidc.Binding{b}
	ctx := context.Background()
	sign := func(opts ...oidctest.SignOption) string {
		c := f.github()
		c["iss"] = url
		return f.iss.Sign(t, c, opts...)
	}
	wantUnavailable := func(step, raw string) {
		t.Helper()
		_, err := f.v.Exchange(ctx, bs, "", raw)
		assertDenied(t, err, tokenward.EUNAVAILABLE, "status 502", raw)
		if msg := tokenward.ErrorMessage(err); !strings.Contains(msg, "unavailable") {
			t.Fatalf("%s: got caller message %q; want it to say unavailable", step, msg)
		}
	}

	cachedKid := f.iss.CurrentKid() // published, so cached once a fetch succeeds

	// Down from the first use: nothing cached.
	down.Store(true)
	wantUnavailable("first use", sign())
	wantUnavailable("again within the interval", sign())
	if n := fetches.Load(); n != 1 {
		t.Fatalf("got %d JWKS fetches; want 1 within the interval", n)
	}

	// Back up: the next refresh after the interval finds the keys.
	down.Store(false)
	f.advance(31 * time.Second)
	if _, err := f.v.Exchange(ctx, bs, "", sign()); err != nil {
		t.Fatalf("after the outage: got %v; want success", err)
	}

	// Down again, and the issuer has rotated to a key not yet cached.
	down.Store(true)
	f.advance(31 * time.Second)
	f.iss.Rotate(t, false)
	wantUnavailable("rotated key during an outage", sign())

	// A token naming a key that is cached but signed by another: refused
	// as bad, outage or not.
	rogue := f.iss.AddKey(t, jose.RS256, false)
	raw := sign(oidctest.WithKey(rogue), oidctest.WithHeaderKid(cachedKid))
	_, err := f.v.Exchange(ctx, bs, "", raw)
	assertDenied(t, err, tokenward.EUNAUTHORIZED, "verifies the signature", raw)
}
