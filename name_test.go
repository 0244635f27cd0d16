package tokenward

import "testing"

func TestValidatePathSegment(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want string // "" for valid
	}{
		{"ci-deploy", ""},
		{"tok_abc", ""},
		{"a.b", ""},
		{"...", ""},
		{"", "token name is empty"},
		{".", `token name "." is not allowed in a path (no . or .., no '/')`},
		{"..", `token name ".." is not allowed in a path (no . or .., no '/')`},
		{"a/b", `token name "a/b" is not allowed in a path (no . or .., no '/')`},
		{"/", `token name "/" is not allowed in a path (no . or .., no '/')`},
	} {
		t.Run(tc.s, func(t *testing.T) {
			err := ValidatePathSegment("token name", tc.s)
			got := ""
			if err != nil {
				if ErrorCode(err) != EINVALID {
					t.Fatalf("got code %s; want %s", ErrorCode(err), EINVALID)
				}
				got = ErrorMessage(err)
			}
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}
