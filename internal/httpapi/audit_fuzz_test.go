package httpapi

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// FuzzParseAuditQuery: any query string either fails with EINVALID or gives
// a query that validates, waits within bounds, and matches without panic.
func FuzzParseAuditQuery(f *testing.F) {
	for _, s := range []string{
		"", "token=tok_1&resource=payments/prod/*&action=secret.*&outcome=denied",
		"since=2026-11-22T12:00:00Z&until=2026-11-23T00:00:00Z&limit=5&order=newest",
		"after=10&wait=30s", "wait=-1s", "limit=0", "action=a*b", "resource=[*?]", "after=99999999999999999999",
		"after=3&before=9&order=newest&limit=2", "before=-1", "before=1e3",
	} {
		f.Add(s)
	}
	e := &tokenward.AuditEntry{Seq: 3, Time: time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC), TokenID: "tok_1", TokenName: "ci",
		Action: "secret.read", Resource: "payments/prod/KEY", Outcome: tokenward.OutcomeAllowed}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{URL: &url.URL{Path: "/v1/audit/entries", RawQuery: raw}}
		q, wait, err := parseAuditQuery(r)
		if err != nil {
			if tokenward.ErrorCode(err) != tokenward.EINVALID {
				t.Fatalf("got %v; want EINVALID", err)
			}
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("parsed query does not validate: %v", err)
		}
		if wait < 0 || wait > MaxTailWait || (wait > 0 && q.Newest) {
			t.Fatalf("got wait %s newest %v; want within 0..%s and not with newest", wait, q.Newest, MaxTailWait)
		}
		if l := q.EffectiveLimit(); l < 1 || l > 1000 {
			t.Fatalf("got limit %d; want 1..1000", l)
		}
		q.Match(e)
	})
}
