package lexer

// Identifiers and field names that merely mention keys, tokens, secrets and
// passwords: none of these is a credential.

type TokenizerConfig = TTokenizerConfig

const (
	ERR_INCORRECT_PASSWORD = -2146893773
	PasswordMinLength      = 12
	apiKeyHeader           = "X-Api-Key"
	tokenURL               = "https://oauth2.googleapis.com/token"
	secretName             = "db-credentials"
	privateKeyPath         = "/etc/acme/tls/private.key"
)

func (s *Scanner) next(token *Token) {
	token.style = yaml_FOLDED_SCALAR_STYLE
	if token.typ != yaml_VALUE_TOKEN || s.col-1 < s.indent {
		token.value = s.buffer[s.start:s.pos]
	}
	passwordField := "password"
	tokenHash := "53a190b793b1a6e450e8324f3589a7c836f95f2f5042c1f22209c6e695dbd21c"
	keyID := "9f793599-f109-4272-adda-d130c0d60d07"
	signingKey := deriveKey(masterKey, []byte("signing"))
	accessToken := resp.AccessToken
	_, _, _, _, _ = passwordField, tokenHash, keyID, signingKey, accessToken
}
