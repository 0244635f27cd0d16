package api

import (
	"encoding/json"
	"testing"

	"github.com/tokenward/tokenward"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		value string
		want  string // "" for valid
	}{
		{KindProject, "payments", ""},
		{KindProject, "Payments", `project name "Payments" is not a lowercase DNS label (a-z, 0-9, inner '-')`},
		{KindEnv, "..", `environment name ".." is not a lowercase DNS label (a-z, 0-9, inner '-')`},
		{KindEnv, "", "environment name is empty"},
		{KindSecret, "API_KEY", ""},
		{KindSecret, "A/B", `secret name "A/B" is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`},
		{KindToken, "ci@deploy:1", ""},
		{KindToken, "..", `token name or id ".." is not allowed in a path (no . or .., no '/')`},
		{KindBinding, "Deploy", ""}, // its form is the server's to check
		{KindBinding, "", "binding name is empty"},
		{KindAnomaly, "a/b", `anomaly id "a/b" is not allowed in a path (no . or .., no '/')`},
		{KindBulkRotation, ".", `bulk rotation id "." is not allowed in a path (no . or .., no '/')`},
	} {
		t.Run(string(tc.kind)+" "+tc.value, func(t *testing.T) {
			got := ""
			if err := CheckName(tc.kind, tc.value); err != nil {
				got = tokenward.ErrorMessage(err)
				if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
					t.Errorf("got code %s; want %s", code, tokenward.EINVALID)
				}
			}
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	var b ErrorBody
	if err := json.Unmarshal([]byte(`{"error":{"code":"forbidden","message":"no grant allows read"}}`), &b); err != nil {
		t.Fatal(err)
	}
	err := b.Err()
	if tokenward.ErrorCode(err) != tokenward.EFORBIDDEN || tokenward.ErrorMessage(err) != "no grant allows read" {
		t.Errorf("got %v; want forbidden: no grant allows read", err)
	}
	if err := (&ErrorBody{}).Err(); err != nil {
		t.Errorf("got %v from an empty body; want nil", err)
	}
}
