package pgproxy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenward/tokenward"
)

// urlKeys are the connection URL settings a route's secret may hold: who
// to sign in as, where, and how to check the upstream's TLS. Anything that
// would make the server read its own files (passfile, servicefile,
// sslcert, sslkey) or go elsewhere (host, port in the query) is refused.
var urlKeys = []string{"user", "password", "database", "dbname", "sslmode", "sslrootcert", "sslsni", "connect_timeout", "application_name", "options"}

// errBadURL is the one error for a secret that is not a usable URL: it
// says nothing of the value.
var errBadURL = tokenward.Errorf(tokenward.EINVALID, "the route's secret is not a usable postgres:// URL (user, password, database, sslmode)")

// upstreamConfig is the connection to route's upstream with the
// credentials of value, a postgres:// URL whose host and port the route's
// upstream replaces. sslmode is the URL's, prefer when it has none (TLS
// when the upstream offers it). client holds the client's startup
// parameters, passed on but for the user and database.
func upstreamConfig(route *tokenward.DBRoute, value []byte, client map[string]string) (*pgconn.Config, error) {
	u, err := url.Parse(string(value))
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil || u.User.Username() == "" || u.Opaque != "" {
		return nil, errBadURL
	}
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "prefer")
	}
	u.Host = route.Upstream
	u.RawQuery = q.Encode()
	cfg, err := pgconn.ParseConfigWithOptions(u.String(), pgconn.ParseConfigOptions{ConnStringAllowedKeys: append([]string{"host", "port"}, urlKeys...)})
	if err != nil {
		return nil, errBadURL
	}
	host, port, _ := net.SplitHostPort(route.Upstream)
	if cfg.Host != host || strconv.Itoa(int(cfg.Port)) != port {
		return nil, errBadURL
	}
	// The server's environment and home directory (PGPASSFILE, ~/.pgpass,
	// ~/.postgresql/postgresql.crt) are the server's own: none of it goes
	// to a route's upstream. The password is the URL's or none.
	pw, _ := u.User.Password()
	cfg.Password = pw
	cfg.ValidateConnect = nil
	cfg.OnPgError = nil
	if cfg.TLSConfig != nil {
		cfg.TLSConfig.Certificates, cfg.TLSConfig.GetClientCertificate = nil, nil
	}
	for _, fb := range cfg.Fallbacks {
		if fb.Host != host || strconv.Itoa(int(fb.Port)) != port {
			return nil, errBadURL
		}
		if fb.TLSConfig != nil {
			fb.TLSConfig.Certificates, fb.TLSConfig.GetClientCertificate = nil, nil
		}
	}
	for k, v := range client {
		switch k {
		case "user", "database", "replication":
		default:
			cfg.RuntimeParams[k] = v
		}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	return cfg, nil
}

// upstream is a signed-in session with a route's upstream, taken over
// from pgconn.
type upstream struct {
	conn     net.Conn
	pid      uint32
	key      []byte
	params   map[string]string
	txStatus byte
	cancelTo string // the address a cancel request goes to
}

// dial signs in to the upstream with cfg and takes the connection over.
func dial(ctx context.Context, cfg *pgconn.Config) (*upstream, error) {
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, err
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	if h.TxStatus == 0 {
		h.Conn.Close()
		return nil, errors.New("upstream not ready")
	}
	return &upstream{conn: h.Conn, pid: h.PID, key: h.SecretKey, params: h.ParameterStatuses, txStatus: h.TxStatus,
		cancelTo: h.Conn.RemoteAddr().String()}, nil
}
