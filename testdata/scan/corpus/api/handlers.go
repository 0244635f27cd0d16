package api

import (
	"crypto/subtle"
	"net/http"
)

type Config struct {
	APIKey       string `json:"api_key"`
	SigningKey   []byte `json:"signing_key"`
	TokenHeader  string `json:"token_header"`
	PasswordHash string `json:"password_hash"`
}

func (c *Config) check(r *http.Request) bool {
	key := r.Header.Get(c.TokenHeader)
	return subtle.ConstantTimeCompare([]byte(key), []byte(c.APIKey)) == 1
}

var defaultConfig = Config{
	TokenHeader: "X-Acme-Token",
	APIKey:      "qB8IyYjirMcknEoZDI9ifHEZ6QO4e6JV",
}
