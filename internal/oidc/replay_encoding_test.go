package oidc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/oidc"
)

// TestReplayOfAReencodedToken replays an identity token that has no jti
// in another, equally valid encoding. base64url decoding ignores the unused
// low bits of the last character and CR/LF, and go-jose re-encodes the
// parts before checking the signature, so each variant verifies. The replay
// record of a token without jti must not depend on its encoding.
func TestReplayOfAReencodedToken(t *testing.T) {
	// flipLastBit sets the lowest (unused) bit of a part's last character.
	flipLastBit := func(part string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, part[len(part)-1])
		return part[:len(part)-1] + string(alphabet[i^1])
	}
	for _, tt := range []struct {
		name  string
		again func(raw string) string
	}{
		{"same token", func(raw string) string { return raw }},
		{"signature low bits", func(raw string) string {
			p := strings.Split(raw, ".")
			p[2] = flipLastBit(p[2])
			return strings.Join(p, ".")
		}},
		{"newline in payload", func(raw string) string {
			p := strings.Split(raw, ".")
			p[1] = p[1][:8] + "\n" + p[1][8:]
			return strings.Join(p, ".")
		}},
		{"CR in header", func(raw string) string {
			p := strings.Split(raw, ".")
			p[0] = p[0][:4] + "\r" + p[0][4:]
			return strings.Join(p, ".")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b := []*oidc.Binding{f.githubBinding(t)}
			c := f.github()
			delete(c, "jti")
			raw := f.iss.Sign(t, c)
			if _, err := f.v.Exchange(context.Background(), b, "", raw); err != nil {
				t.Fatalf("first use: got %v; want success", err)
			}
			f.advance(time.Second)
			again := tt.again(raw)
			if again == raw && tt.name != "same token" {
				t.Fatal("variant equals the original")
			}
			res, err := f.v.Exchange(context.Background(), b, "", again)
			if err == nil {
				t.Fatalf("second use of the same identity token (re-encoded) minted another token (replay id %s); want a replay denial", res.ReplayID)
			}
			d := assertDenied(t, err, tokenward.EUNAUTHORIZED, "", again)
			if !d.Replay {
				t.Fatalf("got denial %q without Replay; want a replay denial", d.Reason)
			}
		})
	}
}
