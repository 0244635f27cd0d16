// Package pgrole holds what the code that manages PostgreSQL login roles
// shares (the postgres rotator, the postgres dynamic source): the
// SCRAM-SHA-256 verifier sent instead of a password, and quoting for the
// utility statements that take no bind parameters.
package pgrole

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgerr"
)

// Verifier computes the SCRAM-SHA-256 verifier PostgreSQL stores
// (RFC 5802/7677 as in PostgreSQL's scram_build_secret), so CREATE or ALTER
// ROLE never carries the plaintext. Generated passwords are ASCII, so
// SASLprep is the identity.
func Verifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

// QuoteLiteral quotes s as an SQL string literal, as PostgreSQL's own
// quote_literal does: a string with a backslash is an escape string
// (E'…', backslashes doubled), which reads the same whatever the
// server's standard_conforming_strings; a plain '…' would let a backslash
// before a quote end the literal where that setting is off.
func QuoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// QuoteIdent quotes s as an SQL identifier.
func QuoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// Exists reports whether role exists.
func Exists(ctx context.Context, conn *pgx.Conn, role string) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up role %s: %s", role, pgerr.Error(err))
	}
	return exists, nil
}
