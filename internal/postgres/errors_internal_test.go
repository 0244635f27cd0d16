package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// TestDBErrorUnavailable: failures to reach the database are EUNAVAILABLE
// (503, "database unavailable; retry"); refusals of a statement, a caller
// that left, and domain errors keep their own code; no text repeats the
// password of the URL.
func TestDBErrorUnavailable(t *testing.T) {
	const password = "PASSWORD-canary-41"
	// A real connection error, to a port nothing listens on.
	_, connErr := pgx.Connect(context.Background(), "postgres://u:"+password+"@127.0.0.1:1/db?connect_timeout=2")
	if connErr == nil {
		t.Fatal("connect to port 1: got nil; want an error")
	}
	pgErr := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"connect refused", connErr, tokenward.EUNAVAILABLE},
		{"admin shutdown 57P01", pgErr("57P01"), tokenward.EUNAVAILABLE},
		{"crash shutdown 57P02", pgErr("57P02"), tokenward.EUNAVAILABLE},
		{"starting up 57P03", pgErr("57P03"), tokenward.EUNAVAILABLE},
		{"connection failure 08006", pgErr("08006"), tokenward.EUNAVAILABLE},
		{"too many connections 53300", pgErr("53300"), tokenward.EUNAVAILABLE},
		{"connection broke", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), tokenward.EUNAVAILABLE},
		{"conn closed", fmt.Errorf("query: %w", pgconn.ErrConnClosed), tokenward.EUNAVAILABLE},
		{"deadline waiting for a connection", context.DeadlineExceeded, tokenward.EUNAVAILABLE},
		{"unique violation", pgErr("23505"), tokenward.EINTERNAL},
		{"syntax error", pgErr("42601"), tokenward.EINTERNAL},
		{"caller left", fmt.Errorf("query: %w", context.Canceled), tokenward.EINTERNAL},
		{"anything else", errors.New("scan: cannot convert"), tokenward.EINTERNAL},
		{"domain error passes", tokenward.Errorf(tokenward.ENOTFOUND, "secret not found"), tokenward.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dbError("query", tt.err)
			if got := tokenward.ErrorCode(err); got != tt.want {
				t.Fatalf("code: got %q (%v); want %q", got, err, tt.want)
			}
			if tt.want == tokenward.EUNAVAILABLE {
				if got, want := tokenward.ErrorMessage(err), "database unavailable; retry"; got != want {
					t.Errorf("message: got %q; want %q", got, want)
				}
				if !errors.Is(err, tt.err) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v; want the cause kept", err)
				}
			}
			if dbError("again", err) != err {
				t.Errorf("dbError of its own error: got a new error; want it as it is")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error repeats the password: %q", err)
			}
		})
	}
}

// TestConnectTimeout: a connection attempt is bounded by the URL's
// connect_timeout, or DB.ConnectTimeout (default 5 s) when it has none,
// never by pgxpool's two minutes; an idle connection's liveness ping by
// a second.
func TestConnectTimeout(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	tests := []struct {
		name string
		url  string
		set  time.Duration
		want time.Duration
	}{
		{"default", url, 0, DefaultConnectTimeout},
		{"DB.ConnectTimeout", url, 2 * time.Second, 2 * time.Second},
		{"connect_timeout in the URL wins", url + "&connect_timeout=3", 2 * time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := NewDB(tt.url)
			if tt.set != 0 {
				db.ConnectTimeout = tt.set
			}
			if err := db.Open(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cfg := db.pool.Config()
			if got := cfg.ConnConfig.ConnectTimeout; got != tt.want {
				t.Errorf("connect timeout: got %s; want %s", got, tt.want)
			}
			if got := cfg.PingTimeout; got != time.Second {
				t.Errorf("ping timeout: got %s; want 1s", got)
			}
		})
	}
}
