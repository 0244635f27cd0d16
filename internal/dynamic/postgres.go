package dynamic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
	"github.com/tokenward/tokenward/internal/pgrole"
)

// The postgres kind's default templates: a LOGIN role valid until the
// lease expires and a member of the group role that holds the privileges;
// at revocation what the role owns goes to the group (a migration's tables
// stay), then the role is dropped.
const (
	DefaultCreationSQL   = `CREATE ROLE {{name}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}} IN ROLE {{group}};`
	DefaultRevocationSQL = `REASSIGN OWNED BY {{name}} TO {{group}}; DROP OWNED BY {{name}}; DROP ROLE IF EXISTS {{name}};`
	// revocationSQLNoGroup is the default when a custom creation SQL names
	// no group: what the role owns is dropped with it.
	revocationSQLNoGroup = `DROP OWNED BY {{name}}; DROP ROLE IF EXISTS {{name}};`
)

// Postgres is the "postgres" kind: a login role per lease, made over an
// admin connection whose URL is a sealed secret (config admin_secret).
// The password is sent as a SCRAM-SHA-256 verifier (internal/pgrole), so
// the plaintext never reaches the server, its statement log or its errors.
//
// Config: admin_secret (project/env/NAME of the admin connection URL),
// group (the group role; needed by the default templates), creation_sql,
// revocation_sql (templates, see Template), url (where clients connect,
// without user info; default: the admin URL without its user info),
// format (url, the default, or json: {"user": ..., "password": ...}).
//
// Revocation first takes the role's login away and ends its sessions
// (pg_terminate_backend), then runs the revocation SQL; a role that does
// not exist is revoked already. Admin connections are pooled per source
// (MaxConns each) and the pool is made again when the admin URL changes.
type Postgres struct {
	Secrets SecretReader
	// MaxConns bounds each source's admin connections (default 4).
	MaxConns int32

	mu    sync.Mutex
	pools map[string]*adminPool // by source path
}

// SecretReader reads a secret's current value on the server's own
// authority (core.RotationSecrets is one).
type SecretReader interface {
	ReadSecret(ctx context.Context, path string) ([]byte, error)
}

type adminPool struct {
	key  [32]byte // SHA-256 of the admin URL it was made from
	pool *pgxpool.Pool
}

type pgConfig struct {
	adminSecret, group, format string
	url                        *url.URL // nil: from the admin URL
	creation, revocation       *Template
}

// Validate implements Kind.
func (p *Postgres) Validate(config map[string]string) error {
	_, err := parsePGConfig(config)
	return err
}

// References implements Kind: the admin secret.
func (p *Postgres) References(config map[string]string) []string {
	return []string{config["admin_secret"]}
}

func parsePGConfig(c map[string]string) (*pgConfig, error) {
	for k := range c {
		switch k {
		case "admin_secret", "group", "creation_sql", "revocation_sql", "url", "format":
		default:
			return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: unknown config key %q", tokenward.Printable(k))
		}
	}
	pc := &pgConfig{adminSecret: c["admin_secret"], group: c["group"], format: c["format"]}
	if parts := strings.Split(pc.adminSecret, "/"); len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: admin_secret: want the path project/env/NAME of the secret holding the admin connection URL")
	}
	if len(pc.group) > 63 || strings.ContainsRune(pc.group, 0) {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: group: want a role name of at most 63 bytes")
	}
	switch pc.format {
	case "":
		pc.format = "url"
	case "url", "json":
	default:
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: format %q: want url or json", tokenward.Printable(pc.format))
	}
	if s := c["url"]; s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: url: want postgres://host[:port]/db[?params]")
		}
		if u.User != nil || u.Query().Has("password") || u.Query().Has("user") {
			return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: url must not hold user info; each lease fills in its own")
		}
		pc.url = u
	}
	var err error
	creation, revocation := c["creation_sql"], c["revocation_sql"]
	if creation == "" {
		creation = DefaultCreationSQL
	}
	if pc.creation, err = ParseTemplate(creation); err != nil {
		return nil, fmt.Errorf("postgres source: creation_sql: %w", err)
	}
	if !pc.creation.Uses("name") || !pc.creation.Uses("password") {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: creation_sql must use {{name}} and {{password}}")
	}
	if revocation == "" {
		revocation = DefaultRevocationSQL
		if !pc.creation.Uses("group") {
			revocation = revocationSQLNoGroup
		}
	}
	if pc.revocation, err = ParseTemplate(revocation); err != nil {
		return nil, fmt.Errorf("postgres source: revocation_sql: %w", err)
	}
	if !pc.revocation.Uses("name") {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: revocation_sql must use {{name}}")
	}
	if pc.revocation.Uses("password") {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: revocation_sql cannot use {{password}}")
	}
	if (pc.creation.Uses("group") || pc.revocation.Uses("group")) && pc.group == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source: group is required: the SQL templates use {{group}} (the role that holds the privileges)")
	}
	return pc, nil
}

// values are a role's placeholders, quoted.
func (pc *pgConfig) values(role string, expires time.Time) map[string]string {
	v := map[string]string{"name": pgrole.QuoteIdent(role), "expiration": pgrole.QuoteLiteral(expires.UTC().Format(time.RFC3339Nano))}
	if pc.group != "" {
		v["group"] = pgrole.QuoteIdent(pc.group)
	}
	return v
}

// admin reads the source's config and the admin URL's current value.
func (p *Postgres) admin(ctx context.Context, src *tokenward.DynamicSource) (*pgConfig, []byte, error) {
	pc, err := parsePGConfig(src.Config)
	if err != nil {
		return nil, nil, err
	}
	if p.Secrets == nil {
		return nil, nil, tokenward.Errorf(tokenward.EINTERNAL, "postgres source: no secret reader configured")
	}
	dsn, err := p.Secrets.ReadSecret(ctx, pc.adminSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("read admin secret %s: %w", pc.adminSecret, err)
	}
	return pc, dsn, nil
}

// badAdminURL is the error for an admin secret pgx cannot parse: never
// pgx's own, which quotes the connection string.
func badAdminURL(src *tokenward.DynamicSource, pc *pgConfig) error {
	return tokenward.Errorf(tokenward.EINVALID, "postgres source %s: admin secret %s is not a valid connection URL", src.Path(), pc.adminSecret)
}

// pool returns the source's admin pool, made from the admin URL's current
// value. The URL never appears in an error.
func (p *Postgres) pool(ctx context.Context, src *tokenward.DynamicSource) (*pgConfig, *pgxpool.Pool, string, error) {
	pc, dsn, err := p.admin(ctx, src)
	if err != nil {
		return nil, nil, "", err
	}
	key := sha256.Sum256(dsn)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ap := p.pools[src.Path()]; ap != nil {
		if ap.key == key {
			return pc, ap.pool, string(dsn), nil
		}
		ap.pool.Close()
		delete(p.pools, src.Path())
	}
	cfg, err := pgxpool.ParseConfig(string(dsn))
	if err != nil {
		return nil, nil, "", badAdminURL(src, pc)
	}
	cfg.MaxConns = p.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("postgres source %s: admin pool: %s", src.Path(), pgerr.Error(err))
	}
	if p.pools == nil {
		p.pools = map[string]*adminPool{}
	}
	p.pools[src.Path()] = &adminPool{key: key, pool: pool}
	return pc, pool, string(dsn), nil
}

// Close closes every admin pool.
func (p *Postgres) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, ap := range p.pools {
		ap.pool.Close()
		delete(p.pools, k)
	}
}

// clientURL is where a lease's client connects: the configured url, or
// the admin URL without its user info and password parameters.
func (pc *pgConfig) clientURL(src *tokenward.DynamicSource, adminDSN string) (*url.URL, error) {
	if pc.url != nil {
		u := *pc.url
		return &u, nil
	}
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, tokenward.Errorf(tokenward.EINVALID, "postgres source %s: the admin secret is not a postgres:// URL; set url (where clients connect)", src.Path())
	}
	u.User = nil
	q := u.Query()
	q.Del("password")
	q.Del("user")
	u.RawQuery = q.Encode()
	return u, nil
}

// createRole is the creation SQL for role, with a fresh password sent as
// its SCRAM verifier.
func (pc *pgConfig) createRole(role string, expires time.Time) (password, stmt string, err error) {
	password = rand.Text() + rand.Text()
	verifier, err := pgrole.Verifier(password)
	if err != nil {
		return "", "", err
	}
	vals := pc.values(role, expires)
	vals["password"] = pgrole.QuoteLiteral(verifier)
	stmt, err = pc.creation.Render(vals)
	return password, stmt, err
}

// renewRole and noLogin are the renewal's and revocation's first
// statement, for role's placeholders v.
func renewRole(v map[string]string) string {
	return "ALTER ROLE " + v["name"] + " VALID UNTIL " + v["expiration"]
}

func noLogin(v map[string]string) string { return "ALTER ROLE " + v["name"] + " NOLOGIN" }

// Create implements Kind: CREATE ROLE through the creation SQL, with a
// fresh password sent as its SCRAM verifier.
func (p *Postgres) Create(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) (*Credential, error) {
	pc, pool, dsn, err := p.pool(ctx, src)
	if err != nil {
		return nil, err
	}
	u, err := pc.clientURL(src, dsn)
	if err != nil {
		return nil, err
	}
	password, stmt, err := pc.createRole(l.Role, l.ExpiresAt)
	if err != nil {
		return nil, err
	}
	// No bind parameters: the simple protocol runs the statements in one
	// implicit transaction, all or nothing.
	if _, err := pool.Exec(ctx, stmt); err != nil {
		return nil, unavailable("create role %s for lease %s: %s", l.Role, l.ID, pgerr.Error(err))
	}
	cred := &Credential{User: l.Role, Password: password}
	if pc.format == "json" {
		b, _ := json.Marshal(map[string]string{"user": l.Role, "password": password}) // #nosec G117 -- the credential is the answer to the lease's holder, never stored
		cred.Value = string(b)
	} else {
		u.User = url.UserPassword(l.Role, password)
		cred.Value = u.String()
	}
	return cred, nil
}

// Renew implements Kind: the role is valid until l.ExpiresAt.
func (p *Postgres) Renew(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) error {
	pc, pool, _, err := p.pool(ctx, src)
	if err != nil {
		return err
	}
	v := pc.values(l.Role, l.ExpiresAt)
	if _, err := pool.Exec(ctx, renewRole(v)); err != nil {
		return unavailable("renew role %s: %s", l.Role, pgerr.Error(err))
	}
	return nil
}

// Revoke implements Kind: no login, no session, then the revocation SQL.
// A role that does not exist is revoked already.
func (p *Postgres) Revoke(ctx context.Context, src *tokenward.DynamicSource, l *tokenward.Lease) error {
	pc, pool, _, err := p.pool(ctx, src)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return unavailable("revoke role %s: %s", l.Role, pgerr.Error(err))
	}
	defer conn.Release()
	exists, err := pgrole.Exists(ctx, conn.Conn(), l.Role)
	if err != nil || !exists {
		return unavailableErr(err)
	}
	v := pc.values(l.Role, l.ExpiresAt)
	if _, err := conn.Exec(ctx, noLogin(v)); err != nil {
		return unavailable("revoke role %s: %s", l.Role, pgerr.Error(err))
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, l.Role); err != nil {
		return unavailable("end the sessions of role %s: %s", l.Role, pgerr.Error(err))
	}
	stmt, err := pc.revocation.Render(v)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return unavailable("drop role %s: %s", l.Role, pgerr.Error(err))
	}
	return nil
}

// Check implements Checker: it connects with the admin URL (a connection
// of its own, not the source's pool: the source may never be stored) and,
// in a transaction it rolls back, runs for a throwaway role every
// statement a lease's life runs: the creation SQL, the renewal, the
// revocation's NOLOGIN and its SQL. A missing group role, a template the
// server refuses or an admin role without the privileges is found when
// the source is written, not at a job's first read; nothing is left in
// the database.
func (p *Postgres) Check(ctx context.Context, src *tokenward.DynamicSource) error {
	pc, dsn, err := p.admin(ctx, src)
	if err != nil {
		return err
	}
	if _, err := pc.clientURL(src, string(dsn)); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(string(dsn))
	if err != nil {
		return badAdminURL(src, pc)
	}
	fail := func(step string, err error) error {
		return checkFailed(src, step, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fail("connect with the admin secret", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fail("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, role := newLeaseID()
	_, create, err := pc.createRole(role, time.Now().Add(time.Hour))
	if err != nil {
		return err
	}
	v := pc.values(role, time.Now().Add(2*time.Hour))
	revoke, err := pc.revocation.Render(v)
	if err != nil {
		return err
	}
	for _, st := range []struct{ step, sql string }{
		{"creation_sql", create}, {"renewal (ALTER ROLE … VALID UNTIL)", renewRole(v)},
		{"revocation (ALTER ROLE … NOLOGIN)", noLogin(v)}, {"revocation_sql", revoke},
	} {
		if _, err := tx.Exec(ctx, st.sql); err != nil {
			return fail(st.step, err)
		}
	}
	return nil
}

// checkFailed describes a failed Check: EINVALID when the database
// answered (the source's settings do not work there), EUNAVAILABLE when
// it could not be reached or is not taking work now. Never the statement
// or the URL.
func checkFailed(src *tokenward.DynamicSource, step string, err error) error {
	code := tokenward.EINVALID
	switch c := pgerr.Code(err); {
	case c == "", strings.HasPrefix(c, "08"), strings.HasPrefix(c, "53"), strings.HasPrefix(c, "57"):
		code = tokenward.EUNAVAILABLE
	}
	return tokenward.Errorf(code, "postgres source %s: check: %s: %s; fix the source or its database, or write it unchecked (skip_check)", src.Path(), step, pgerr.Error(err))
}

// unavailable is a failure of the target database: EUNAVAILABLE, retried.
func unavailable(format string, args ...any) error {
	return tokenward.Errorf(tokenward.EUNAVAILABLE, format, args...)
}

func unavailableErr(err error) error {
	if err == nil {
		return nil
	}
	return tokenward.Errorf(tokenward.EUNAVAILABLE, "%s", err.Error())
}
