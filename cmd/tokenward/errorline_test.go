//go:build !tokenward_client

package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tokenward/tokenward"
)

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		// main prints "tokenward: " before it: not a second "tokenward: conflict: ".
		{tokenward.Errorf(tokenward.ECONFLICT, "a migration holds this database"), "a migration holds this database (conflict)"},
		{errors.New("plain"), "plain"},
		// Wrapped: the chain's text with the *Error's part as the CLI shows it.
		{fmt.Errorf("read keyring: %w", tokenward.Errorf(tokenward.EUNAVAILABLE, "the database is down")), "read keyring: the database is down (unavailable)"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", tokenward.Errorf(tokenward.ENOTFOUND, "no such secret"))), "a: b: no such secret (not_found)"},
		// An *Error not at the end of the text is left as it is.
		{fmt.Errorf("%w; then more", tokenward.Errorf(tokenward.EINVALID, "bad")), "tokenward: invalid: bad; then more"},
	} {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}
