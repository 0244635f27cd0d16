package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestSharedClusterAcceptsPasswordAndRejectsWrongOne(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		dsn     string
		wantErr bool
	}{
		{"superuser", c.DSN, false},
		{"wrong password", c.URL(c.User, "not-the-password", "postgres"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, tt.dsn)
			if (err != nil) != tt.wantErr {
				t.Fatalf("connect: got err %v; want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			var one int
			if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("select 1: got %d, %v; want 1, nil", one, err)
			}
		})
	}
	if pgtest.Shared(t) != c {
		t.Fatalf("Shared: got a second cluster; want the same one")
	}
}

func TestStartStopsAndRemovesCluster(t *testing.T) {
	var c *pgtest.Cluster
	t.Run("run", func(t *testing.T) {
		c = pgtest.Start(t)
		if !strings.HasPrefix(c.DSN, "postgres://postgres:") {
			t.Fatalf("DSN: got prefix %.20q; want postgres://postgres:", c.DSN)
		}
	})
	if c == nil {
		t.Skip("cluster did not start")
	}
	if _, err := pgx.Connect(context.Background(), c.DSN); err == nil {
		t.Fatalf("connect after cleanup: got nil error; want the server stopped")
	}
	if _, err := os.Stat(c.SocketDir); !os.IsNotExist(err) {
		t.Fatalf("stat socket dir after cleanup: got %v; want not exist", err)
	}
}
