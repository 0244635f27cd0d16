package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// TestSecretMetaRefusesNUL: a secret's owner, description and tags are
// text, and PostgreSQL's text refuses a NUL byte: SQLite stored it, so the
// two stores disagreed and such an install could not move to PostgreSQL.
// Both refuse it now, at the one check of secret metadata, with a 400 that
// names the field; nothing is written.
func TestSecretMetaRefusesNUL(t *testing.T) {
	e := MustServe(t)
	e.mustDo(t, e.admin, "POST", "/v1/projects", map[string]any{"name": "payments", "environments": []string{"prod"}}, 201)
	e.mustDo(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", map[string]any{"value": "original", "owner": "team-a"}, 200)
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"owner", map[string]any{"value": "v", "owner": "team\x00a"}, "owner has a NUL byte"},
		{"description", map[string]any{"value": "v", "description": "the\x00key"}, "description has a NUL byte"},
		{"tag", map[string]any{"value": "v", "tags": []string{"ok", "pci\x00"}}, `tag "pci?" has a NUL byte`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, b := e.do(t, e.admin, "PUT", "/v1/secrets/payments/prod/KEY", tc.body)
			var eb api.ErrorBody
			json.Unmarshal(b, &eb)
			if got != 400 || eb.Error.Code != tokenward.EINVALID || !strings.Contains(eb.Error.Message, tc.want) {
				t.Errorf("got %d %s; want 400 invalid with %q", got, b, tc.want)
			}
		})
	}
	b := e.mustDo(t, e.admin, "GET", "/v1/secrets/payments/prod/KEY", nil, 200)
	var s api.SecretResponse
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Value != "original" || s.Version != 1 || s.Owner != "team-a" || s.Description != "" || len(s.Tags) != 0 {
		t.Errorf("got %q at version %d, owner %q, description %q, tags %q; want the secret unchanged", s.Value, s.Version, s.Owner, s.Description, s.Tags)
	}
}

// TestValidateSecretMetaRefusesInvalidUTF8: JSON decoding replaces bytes
// that are not UTF-8, so the check is what keeps them out of a store when
// metadata comes another way (PostgreSQL refuses them; SQLite stored them,
// and JSON-encoded tags were silently changed).
func TestValidateSecretMetaRefusesInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta tokenward.Secret
		want string // "" for valid
	}{
		{"text", tokenward.Secret{Owner: "équipe", Description: "clé → 🔑", Tags: []string{"pci", "übung"}}, ""},
		{"owner", tokenward.Secret{Owner: "team\xffa"}, "owner is not valid UTF-8"},
		{"description", tokenward.Secret{Description: "\xc3("}, "description is not valid UTF-8"},
		{"tag", tokenward.Secret{Tags: []string{"a\xfe"}}, "is not valid UTF-8"},
		{"NUL", tokenward.Secret{Owner: "\x00"}, "owner has a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tokenward.ValidateSecretMeta(&tc.meta)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tc.want != "" && (tokenward.ErrorCode(err) != tokenward.EINVALID || !strings.Contains(tokenward.ErrorMessage(err), tc.want)):
				t.Errorf("got %v; want invalid: %q", err, tc.want)
			}
		})
	}
}

// TestNoSuchRouteDoesNotRepeatAToken: a 404 for an unknown path names the
// path, but not a token pasted into it (an error can land in a CI log).
func TestNoSuchRouteDoesNotRepeatAToken(t *testing.T) {
	e := MustServe(t)
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		t.Fatal(err)
	}
	status, body := e.do(t, e.admin, "GET", "/v1/nothing/"+tok, nil)
	if status != 404 || !strings.Contains(string(body), "no such route") || !strings.Contains(string(body), "/v1/nothing/") {
		t.Fatalf("got %d %s; want 404 naming the path", status, body)
	}
	if strings.Contains(string(body), tok) || strings.Contains(string(body), tok[:20]) {
		t.Fatalf("the 404 repeats the token: %s", body)
	}
}
