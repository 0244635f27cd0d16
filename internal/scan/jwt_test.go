package scan

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/scan/rules"
)

// jwtOf builds a compact JWS from a header and a payload (JSON text) and a
// fixed fake signature.
func jwtOf(header, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + ".fkzS_qkDbvwa_hNx50U5QpaNm1xZaG8noPoql67RTFE"
}

func TestDecodeJWT(t *testing.T) {
	const hs = `{"alg":"HS256","typ":"JWT"}`
	for _, tc := range []struct {
		name    string
		tok     string
		wantErr error
		want    JWTInfo
	}{
		{"issuer and exp", jwtOf(hs, `{"sub":"l7n5zw99l1jk","iss":"https://auth.acme.io","exp":1894090627}`), nil,
			JWTInfo{Alg: "HS256", Issuer: "https://auth.acme.io", Expires: time.Unix(1894090627, 0).UTC()}},
		{"no iss no exp", jwtOf(`{"alg":"ES256"}`, `{"uid":148879,"role":"ci-deployer"}`), nil, JWTInfo{Alg: "ES256"}},
		{"padded parts", strings.Replace(jwtOf(`{"alg":"RS256"}`, `{"sub":"a"}`), ".", "=.", 1), nil, JWTInfo{Alg: "RS256"}},
		{"jwt.io sample", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", ErrJWTExample, JWTInfo{}},
		{"john doe", jwtOf(hs, `{"sub":"u-81","name":"John Doe"}`), ErrJWTExample, JWTInfo{}},
		{"placeholder sub", jwtOf(hs, `{"sub":"your-user-id","exp":1894000000}`), ErrJWTExample, JWTInfo{}},
		{"example.com issuer", jwtOf(hs, `{"sub":"0ezhb37pppt7","iss":"https://auth.example.com"}`), ErrJWTExample, JWTInfo{}},
		{"alg none", jwtOf(`{"alg":"none","typ":"JWT"}`, `{"sub":"u-81"}`), ErrJWTUnsigned, JWTInfo{}},
		{"alg None", jwtOf(`{"alg":"None"}`, `{"sub":"u-81"}`), ErrJWTUnsigned, JWTInfo{}},
		{"no alg", jwtOf(`{"typ":"JWT"}`, `{"sub":"u-81"}`), ErrJWTHeader, JWTInfo{}},
		{"alg not a string", jwtOf(`{"alg":256}`, `{"sub":"u-81"}`), ErrJWTHeader, JWTInfo{}},
		{"header not JSON", jwtOf(`{"alg":"HS256"`, `{"sub":"u-81"}`), ErrJWTHeader, JWTInfo{}},
		{"payload not JSON", jwtOf(hs, "{\"sub\":\"ypka\",\"isvl!\xf5q\x8dPrk'"), ErrJWTPayload, JWTInfo{}},
		{"payload an array", jwtOf(hs, `["a"]`), ErrJWTPayload, JWTInfo{}},
		{"payload null", jwtOf(hs, `null`), ErrJWTPayload, JWTInfo{}},
		{"header null", jwtOf(`null`, `{"sub":"u-81"}`), ErrJWTHeader, JWTInfo{}},
		{"no signature", strings.TrimSuffix(jwtOf(hs, `{"sub":"u-81"}`), "fkzS_qkDbvwa_hNx50U5QpaNm1xZaG8noPoql67RTFE"), ErrJWTShape, JWTInfo{}},
		{"two parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTgxIn0", ErrJWTShape, JWTInfo{}},
		{"not base64url", "eyJhbGci+iJIUzI1NiJ9.eyJzdWIiOiJ1LTgxIn0.abc", ErrJWTShape, JWTInfo{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeJWT(tc.tok)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v; want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestJWTReason(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		info JWTInfo
		want string
	}{
		{JWTInfo{Alg: "HS256", Issuer: "https://auth.acme.io", Expires: now.AddDate(1, 0, 0)}, "jwt alg HS256, iss https://auth.acme.io, expires 2027-12-04"},
		{JWTInfo{Alg: "RS256", Expires: now.AddDate(0, 0, -2)}, "jwt alg RS256, expired 2026-12-02 (an old token: lower risk, still revoke it)"},
		{JWTInfo{Alg: "RS256", Expires: now}, "jwt alg RS256, expired 2026-12-04 (an old token: lower risk, still revoke it)"},
		{JWTInfo{Alg: "ES256"}, "jwt alg ES256, no exp"},
		{JWTInfo{Alg: "HS256", Issuer: "a\x1b[31mb"}, "jwt alg HS256, no exp"},
	} {
		if got := tc.info.reason(now); got != tc.want {
			t.Errorf("got %q; want %q", got, tc.want)
		}
	}
}

// TestJWTFindingReason scans real-shaped tokens with the built-in rules: a
// token that decodes is reported with its alg, issuer and expiry in the
// reason, an expired one too, and no report format holds the token, its
// header, payload or signature.
func TestJWTFindingReason(t *testing.T) {
	cfg, err := LoadFS(rules.FS)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	s, err := New(cfg, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	live := jwtOf(`{"alg":"RS256","kid":"k1"}`, `{"sub":"5de88a89","iss":"https://auth.acme.io/","exp":1894090627}`)
	old := jwtOf(`{"alg":"HS256"}`, `{"sub":"3c928539","exp":1764217529}`)
	sample := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	data := "curl -H 'X-Auth: " + live + "'\nold: " + old + "\ndocs: " + sample + "\n"
	fs := s.ScanBytes("notes.txt", []byte(data))
	want := map[int]string{
		1: "jwt alg RS256, iss https://auth.acme.io/, expires 2030-01-08;",
		2: "jwt alg HS256, expired 2025-11-27 (an old token",
	}
	got := map[int]string{}
	for _, f := range fs {
		if f.RuleID == "jwt" {
			got[f.Line] = f.Why()
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got jwt findings on lines %v; want lines 1 and 2 (not the jwt.io sample on 3)", got)
	}
	for l, w := range want {
		if !strings.Contains(got[l], w) {
			t.Errorf("line %d: got reason %q; want it to contain %q", l, got[l], w)
		}
	}
	for _, format := range Formats {
		var out bytes.Buffer
		if err := WriteReport(&out, format, fs, ReportInfo{ToolVersion: "test"}); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{live, old} {
			for _, part := range strings.Split(tok, ".") {
				if bytes.Contains(out.Bytes(), []byte(part)) {
					t.Errorf("%s report holds a part of a token: %q", format, part)
				}
			}
		}
	}
	if b, _ := json.Marshal(fs); bytes.Contains(b, []byte(live[:40])) {
		t.Errorf("JSON findings hold the token")
	}
}

// FuzzDecodeJWT decodes any string: no panic; a token it keeps has a
// non-empty alg other than none, and its reason holds no part of it.
func FuzzDecodeJWT(f *testing.F) {
	f.Add(jwtOf(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"l7n5zw99l1jk","iss":"https://auth.acme.io","exp":1894090627}`))
	f.Add(jwtOf(`{"alg":"none"}`, `{"sub":"x"}`))
	f.Add(jwtOf(`{"alg":"ES256"}`, `{"exp":1e300,"iss":7}`))
	f.Add("eyJhbGciOiJIUzI1NiJ9..")
	f.Add("a.b.c")
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, tok string) {
		info, err := DecodeJWT(tok)
		if err != nil {
			if info != (JWTInfo{}) {
				t.Fatalf("got %+v with error %v; want the zero JWTInfo", info, err)
			}
			return
		}
		if info.Alg == "" || strings.EqualFold(info.Alg, "none") {
			t.Fatalf("kept a token with alg %q", info.Alg)
		}
		reason := info.reason(now)
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 8 && strings.Contains(reason, part) {
				t.Fatalf("reason %q holds token part %q", reason, part)
			}
		}
	})
}
