package scan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// JWTInfo is what a JSON Web Token's header and payload say. The signature
// is not checked (the scanner has no key): a token that decodes is
// credible, not verified.
type JWTInfo struct {
	Alg     string    // the header's "alg"
	Issuer  string    // the payload's "iss", "" when absent
	Expires time.Time // the payload's "exp", zero when absent
}

// Reasons DecodeJWT refuses a token. None of them holds any part of the
// token.
var (
	ErrJWTShape    = errors.New("jwt: not three base64url parts")
	ErrJWTHeader   = errors.New("jwt: header is not a JSON object with alg")
	ErrJWTUnsigned = errors.New(`jwt: alg "none" (unsigned)`)
	ErrJWTPayload  = errors.New("jwt: payload is not a JSON object")
	ErrJWTExample  = errors.New("jwt: a documentation example")
)

// maxJWTPart bounds the decoded size of a header or payload (real ones are
// well under a kilobyte; this keeps a hostile file from costing much).
const maxJWTPart = 16 << 10

// DecodeJWT base64url-decodes a compact JWS's header and payload and keeps
// it only if the header is a JSON object with a non-empty "alg" other than
// "none", the payload is a JSON object, the signature part is not empty,
// and the payload is not a well-known example (the jwt.io sample, or
// placeholder claim values). An expired token is still a token: old
// leaked tokens matter less, and the finding says so, but they are kept.
func DecodeJWT(tok string) (JWTInfo, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] == "" {
		return JWTInfo{}, ErrJWTShape
	}
	header, err := decodeJWTObject(parts[0], ErrJWTHeader)
	if err != nil {
		return JWTInfo{}, err
	}
	alg, _ := header["alg"].(string)
	if alg == "" {
		return JWTInfo{}, ErrJWTHeader
	}
	if strings.EqualFold(alg, "none") {
		return JWTInfo{}, ErrJWTUnsigned
	}
	claims, err := decodeJWTObject(parts[1], ErrJWTPayload)
	if err != nil {
		return JWTInfo{}, err
	}
	if exampleClaims(claims) {
		return JWTInfo{}, ErrJWTExample
	}
	info := JWTInfo{Alg: alg}
	info.Issuer, _ = claims["iss"].(string)
	if exp, ok := claims["exp"].(float64); ok && exp > 0 && exp < 1<<40 {
		info.Expires = time.Unix(int64(exp), 0).UTC()
	}
	return info, nil
}

// decodeJWTObject base64url-decodes one part (padding allowed) and reads
// it as a JSON object: ErrJWTShape if it is not base64url, notObject if it
// is not a JSON object.
func decodeJWTObject(s string, notObject error) (map[string]any, error) {
	s = strings.TrimRight(s, "=")
	if s == "" || base64.RawURLEncoding.DecodedLen(len(s)) > maxJWTPart {
		return nil, ErrJWTShape
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrJWTShape
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil, notObject
	}
	return m, nil
}

// exampleClaims reports whether a payload is a documentation example: the
// jwt.io debugger's sample ({"sub":"1234567890","name":"John Doe",...}) or
// any string claim that is a placeholder.
func exampleClaims(claims map[string]any) bool {
	if sub, _ := claims["sub"].(string); sub == "1234567890" {
		return true
	}
	for _, v := range claims {
		s, ok := v.(string)
		if !ok {
			continue
		}
		l := strings.ToLower(s)
		if l == "john doe" || l == "jane doe" || isPlaceholderClaim(l) {
			return true
		}
	}
	return false
}

// isPlaceholderClaim: the placeholder words of secrets that also mark
// claim values (not the short or shape-based ones: claim values are
// legitimately short, repetitive or contain <, > and URLs).
func isPlaceholderClaim(lower string) bool {
	for _, w := range []string{"example", "placeholder", "changeme", "change_me", "your_", "your-", "dummy", "redacted", "${", "{{", "xxxx", "foobar"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// reason is the finding's explanation: alg, issuer (when present) and
// whether the token had expired at now. Never the token.
func (i JWTInfo) reason(now time.Time) string {
	var b strings.Builder
	b.WriteString("jwt alg " + cleanName(i.Alg))
	if iss := cleanName(i.Issuer); iss != "" {
		b.WriteString(", iss " + iss)
	}
	switch {
	case i.Expires.IsZero():
		b.WriteString(", no exp")
	case !i.Expires.After(now):
		b.WriteString(", expired " + i.Expires.Format(time.DateOnly) + " (an old token: lower risk, still revoke it)")
	default:
		b.WriteString(", expires " + i.Expires.Format(time.DateOnly))
	}
	return b.String()
}
