package main

import (
	"errors"
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
	} {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}
