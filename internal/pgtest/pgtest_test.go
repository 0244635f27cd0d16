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

// TestStopServerStartServer: a stopped server refuses connections, and
// started again it listens on the same port with the same data.
func TestStopServerStartServer(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	url := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('before')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	port := c.Port
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, url+"&connect_timeout=2"); err == nil {
		conn.Close(ctx)
		t.Fatal("connect while stopped: got nil error; want a refusal")
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	if c.Port != port {
		t.Fatalf("port: got %d; want %d", c.Port, port)
	}
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect after StartServer: %v", err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "before" {
		t.Fatalf("after restart: got %q, %v; want the row written before", v, err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping on a connection from before Restart: got nil; want it ended")
	}
}
