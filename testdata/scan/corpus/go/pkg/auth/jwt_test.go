package auth

import (
	"strings"
	"testing"
)

// The jwt.io example token: a public test vector, not a credential.
const exampleJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

var fakeGitHubToken = "ghp_" + strings.Repeat("a", 36)

// A tokenward token with a wrong checksum: ParseToken must reject it.
const badChecksum = "tws_wv5ONotFpmrWUKSmkdWU6S4XuWafQWFYwJRKDwbrbiS2g89XA"

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in string }{{exampleJWT}, {fakeGitHubToken}, {badChecksum}} {
		if _, err := Parse(tc.in); err == nil {
			t.Errorf("Parse(%q): got nil error", tc.in)
		}
	}
	id := "3870f3da-2c24-48da-ac92-51f8f67bf844"
	_ = id
}
