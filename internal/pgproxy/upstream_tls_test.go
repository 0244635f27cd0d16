package pgproxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// upstreamTLS turns TLS on in the shared cluster once, with a throwaway
// certificate, so every test's upstream offers it (as most real ones do).
var upstreamTLS struct {
	once sync.Once
	dir  string // removed by TestMain
	err  error
}

func enableUpstreamTLS(t testing.TB, c *pgtest.Cluster) {
	t.Helper()
	upstreamTLS.once.Do(func() { upstreamTLS.dir, upstreamTLS.err = writeUpstreamCert(c) })
	if upstreamTLS.err != nil {
		t.Fatalf("upstream TLS: %v", upstreamTLS.err)
	}
}

// newCert makes a self-signed server certificate for 127.0.0.1, valid for
// a day.
func newCert() ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}

func writeUpstreamCert(c *pgtest.Cluster) (string, error) {
	der, key, err := newCert()
	if err != nil {
		return "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "pgproxy-tls-")
	if err != nil {
		return "", err
	}
	// The cluster runs as postgres when the tests run as root: it must
	// reach the files, and own the key (PostgreSQL refuses a key others
	// may read).
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- test: the postgres user traverses it
		return dir, err
	}
	cert, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil { // #nosec G306 -- a public certificate
		return dir, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return dir, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return dir, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(keyFile, uid, gid); err != nil {
			return dir, err
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		return dir, err
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"ALTER SYSTEM SET ssl_cert_file = '" + cert + "'",
		"ALTER SYSTEM SET ssl_key_file = '" + keyFile + "'",
		"ALTER SYSTEM SET ssl = on",
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// TestUpstreamTLS: with the URL's default sslmode (prefer) the session to
// an upstream that offers TLS is inside TLS; with sslmode=disable it is
// not.
func TestUpstreamTLS(t *testing.T) {
	f := newFixture(t)
	_, secret := f.token(t, "ci-job", "gateway:pgprod")
	for _, tt := range []struct {
		query string
		want  bool
	}{{"", true}, {"?sslmode=disable", false}, {"?sslmode=require", true}} {
		f.putURL(t, f.password, tt.query)
		conn, err := f.connect(t, "pgprod", secret)
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		var ssl bool
		// pg_reload_conf is asynchronous: a session made before the
		// postmaster reloaded would not offer TLS yet, so wait for it.
		for deadline := time.Now().Add(10 * time.Second); ; {
			err = conn.QueryRow(t.Context(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
			if err != nil || ssl == tt.want || !tt.want || time.Now().After(deadline) {
				break
			}
			conn.Close(context.Background())
			time.Sleep(50 * time.Millisecond)
			if conn, err = f.connect(t, "pgprod", secret); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(context.Background())
		if err != nil || ssl != tt.want {
			t.Fatalf("%q: got ssl %v, %v; want %v", tt.query, ssl, err, tt.want)
		}
	}
}
