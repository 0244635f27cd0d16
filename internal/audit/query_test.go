package audit

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

func TestQueryValidate(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		q    Query
		want string // the error's message; "" for none
	}{
		{"empty", Query{}, ""},
		{"after", Query{After: 5}, ""},
		{"before", Query{Before: 5}, ""},
		{"window", Query{After: 2, Before: 9, Newest: true, Limit: 3}, ""},
		{"negative after", Query{After: -1}, "limit, after and before must not be negative"},
		{"negative before", Query{Before: -1}, "limit, after and before must not be negative"},
		{"negative limit", Query{Limit: -1}, "limit, after and before must not be negative"},
		{"bad outcome", Query{Outcome: "maybe"}, "outcome must be allowed, denied or error"},
		{"since not before until", Query{Since: t0, Until: t0}, "since must be before until"},
	} {
		err := tc.q.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: got %v; want nil", tc.name, err)
			}
			continue
		}
		if tokenward.ErrorCode(err) != tokenward.EINVALID || tokenward.ErrorMessage(err) != tc.want {
			t.Errorf("%s: got %v; want EINVALID %q", tc.name, err, tc.want)
		}
	}
}
