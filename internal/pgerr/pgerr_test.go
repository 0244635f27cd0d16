package pgerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestError(t *testing.T) {
	// A real connection error from pgx, to a port nothing listens on, with
	// a password in its DSN.
	_, connErr := pgx.Connect(context.Background(), "postgres://u:PASSWORD-canary@127.0.0.1:1/db?connect_timeout=2")
	if connErr == nil {
		t.Fatal("connect to port 1: got nil; want an error")
	}
	tests := []struct {
		name     string
		err      error
		want     string
		wantCode string
	}{
		{"server error", fmt.Errorf("exec: %w", &pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint \"t_pkey\"", Detail: "Key (id)=(PASSWORD-canary) already exists."}),
			`duplicate key value violates unique constraint "t_pkey" (SQLSTATE 23505)`, "23505"},
		{"connection error", connErr, "cannot connect to 127.0.0.1", ""},
		{"timeout", fmt.Errorf("query: %w", context.DeadlineExceeded), "timed out", ""},
		{"anything else", errors.New("dial postgres://u:PASSWORD-canary@h/db"), "connection failed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Error(tt.err)
			if got != tt.want {
				t.Errorf("Error: got %q; want %q", got, tt.want)
			}
			if strings.Contains(got, "canary") {
				t.Errorf("Error: got %q, which holds the password or a value", got)
			}
			if c := Code(tt.err); c != tt.wantCode {
				t.Errorf("Code: got %q; want %q", c, tt.wantCode)
			}
		})
	}
}
