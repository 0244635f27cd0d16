// Package pgrotate is the "postgres" rotator: the password of a PostgreSQL
// login role. It is a package of its own so that rotate, which the CLI
// client links for its types, does not link the PostgreSQL driver.
package pgrotate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
	"github.com/tokenward/tokenward/internal/pgrole"
	"github.com/tokenward/tokenward/internal/rotate"
)

// Rotator is the "postgres" rotator: the password of a PostgreSQL login
// role, changed with ALTER ROLE over an admin connection.
//
// Strategy: two login roles used alternately (by default ROLE_a and ROLE_b,
// both members of the group role ROLE, which owns the privileges). A
// PostgreSQL role has exactly one password, so the old credential can only
// stay valid through grace if the new one belongs to the other role. Each
// rotation sets a fresh password on the role not in use (creating it if
// needed, LOGIN, member of ROLE), tests a login with it, and at the end of
// grace revokes the old role's login (NOLOGIN, PASSWORD NULL). The secret's
// value therefore names its user: a connection URL (format=url) or
// {"user": ..., "password": ...} (format=json).
//
// The password is sent as a SCRAM-SHA-256 verifier computed here, so the
// plaintext never reaches the server, its statement log or its errors.
//
// Config: dsn_secret (path of the secret holding the admin connection URL),
// role (the group role), url (where the app connects, without user info,
// e.g. postgres://db:5432/app?sslmode=require), roles (optional "a,b": the
// two login roles), format (url, the default, or json).
type Rotator struct {
	Secrets rotate.SecretReader
}

type pgConfig struct {
	dsnSecret, group, format string
	roles                    [2]string
	url                      *url.URL
}

// Validate implements Rotator.
func (p *Rotator) Validate(config map[string]string) error {
	_, err := parsePGConfig(config)
	return err
}

func parsePGConfig(c map[string]string) (*pgConfig, error) {
	for k := range c {
		switch k {
		case "dsn_secret", "role", "url", "roles", "format":
		default:
			return nil, errInvalid("postgres rotator: unknown config key %q", tokenward.Printable(k))
		}
	}
	pc := &pgConfig{dsnSecret: c["dsn_secret"], group: c["role"], format: c["format"]}
	if pc.dsnSecret == "" || pc.group == "" || c["url"] == "" {
		return nil, errInvalid("postgres rotator: dsn_secret, role and url are required")
	}
	if pc.format == "" {
		pc.format = "url"
	}
	if pc.format != "url" && pc.format != "json" {
		return nil, errInvalid("postgres rotator: format %q: want url or json", tokenward.Printable(pc.format))
	}
	u, err := url.Parse(c["url"])
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, errInvalid("postgres rotator: url: want postgres://host[:port]/db[?params]")
	}
	if u.User != nil {
		return nil, errInvalid("postgres rotator: url must not hold user info; the rotator fills it in")
	}
	pc.url = u
	pc.roles = [2]string{pc.group + "_a", pc.group + "_b"}
	if r := c["roles"]; r != "" {
		a, b, ok := strings.Cut(r, ",")
		a, b = strings.TrimSpace(a), strings.TrimSpace(b)
		if !ok || a == "" || b == "" || a == b || strings.Contains(b, ",") {
			return nil, errInvalid("postgres rotator: roles: want two different role names, like app_a,app_b")
		}
		pc.roles = [2]string{a, b}
	}
	for _, r := range append(pc.roles[:], pc.group) {
		if len(r) > 63 || strings.ContainsRune(r, 0) {
			return nil, errInvalid("postgres rotator: role %q: want at most 63 bytes", tokenward.Printable(r))
		}
	}
	return pc, nil
}

// pgCredential is the user and password a value carries.
type pgCredential struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (pc *pgConfig) encode(c pgCredential) []byte {
	if pc.format == "json" {
		b, _ := json.Marshal(c) // #nosec G117 -- encoding the new credential as the secret's value is this rotator's job; it is sealed before storage
		return b
	}
	u := *pc.url
	u.User = url.UserPassword(c.User, c.Password)
	return []byte(u.String())
}

// decode reads a value. Its errors are Permanent: a rotation's values are
// versions of the secret, which never change.
func (pc *pgConfig) decode(v []byte) (pgCredential, error) {
	var c pgCredential
	if pc.format == "json" {
		if err := json.Unmarshal(v, &c); err != nil || c.User == "" {
			return c, rotate.Permanent(errInvalid("postgres rotator: value is not {\"user\":...,\"password\":...}"))
		}
		return c, rotate.Permanent(checkUser(c))
	}
	u, err := url.Parse(string(v))
	if err != nil || u.User == nil || u.User.Username() == "" {
		// never wrap err: url errors quote the input, which holds the password
		return c, rotate.Permanent(errInvalid("postgres rotator: value is not a connection URL with a user"))
	}
	c.User = u.User.Username()
	c.Password, _ = u.User.Password()
	return c, rotate.Permanent(checkUser(c))
}

// checkUser refuses a user no role can be named: PostgreSQL reads a longer
// name (in ALTER ROLE and at login) as its first 63 bytes, so "<role>x"
// would pass for a role other than <role> here while acting on <role>
// there (the same-role guard of Revoke); a NUL cannot reach the server.
func checkUser(c pgCredential) error {
	if len(c.User) > 63 || strings.ContainsRune(c.User, 0) {
		return errInvalid("postgres rotator: value's user %q: want a role name of at most 63 bytes", tokenward.Printable(c.User))
	}
	return nil
}

// connURL is where to log in with c, for Test.
func (pc *pgConfig) connURL(c pgCredential) string {
	u := *pc.url
	u.User = url.UserPassword(c.User, c.Password)
	return u.String()
}

// Create implements Rotator: a new password for the role not in use now.
func (p *Rotator) Create(_ context.Context, req *rotate.Request) ([]byte, error) {
	pc, err := parsePGConfig(req.Config)
	if err != nil {
		return nil, err
	}
	user := pc.roles[0]
	if req.Current != nil {
		cur, err := pc.decode(req.Current)
		if err != nil {
			return nil, err
		}
		if cur.User == pc.roles[0] {
			user = pc.roles[1]
		}
	}
	return pc.encode(pgCredential{User: user, Password: rand.Text() + rand.Text()}), nil
}

func (p *Rotator) admin(ctx context.Context, pc *pgConfig) (*pgx.Conn, error) {
	if p.Secrets == nil {
		return nil, errors.New("postgres rotator: no secret reader configured")
	}
	dsn, err := p.Secrets.ReadSecret(ctx, pc.dsnSecret)
	if err != nil {
		return nil, fmt.Errorf("read admin dsn secret %s: %w", pc.dsnSecret, err)
	}
	cfg, err := pgx.ParseConfig(string(dsn))
	if err != nil {
		return nil, errInvalid("postgres rotator: admin dsn secret %s is not a valid connection string", pc.dsnSecret)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect as admin: %s", pgerr.Error(err))
	}
	return conn, nil
}

// parsePGRequest parses a request's config and one of its values.
func parsePGRequest(config map[string]string, value []byte) (*pgConfig, pgCredential, error) {
	pc, err := parsePGConfig(config)
	if err != nil {
		return nil, pgCredential{}, err
	}
	cred, err := pc.decode(value)
	return pc, cred, err
}

// Set implements Rotator: the pending role exists, may log in with the new
// password and is a member of the group role. Repeating it is harmless.
func (p *Rotator) Set(ctx context.Context, req *rotate.Request) error {
	pc, cred, err := parsePGRequest(req.Config, req.Pending)
	if err != nil {
		return err
	}
	if cred.User != pc.roles[0] && cred.User != pc.roles[1] {
		return rotate.Permanent(errInvalid("postgres rotator: pending user %q is not one of the configured roles", tokenward.Printable(cred.User)))
	}
	verifier, err := pgrole.Verifier(cred.Password)
	if err != nil {
		return err
	}
	conn, err := p.admin(ctx, pc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exists, err := pgrole.Exists(ctx, conn, cred.User)
	if err != nil {
		return err
	}
	verb := "ALTER"
	if !exists {
		verb = "CREATE"
	}
	// Utility statements take no bind parameters: identifiers and the
	// verifier are quoted instead.
	stmt := fmt.Sprintf("%s ROLE %s WITH LOGIN PASSWORD %s", verb, pgrole.QuoteIdent(cred.User), pgrole.QuoteLiteral(verifier))
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return statementError(fmt.Sprintf("%s role %s", strings.ToLower(verb), cred.User), err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", pgrole.QuoteIdent(pc.group), pgrole.QuoteIdent(cred.User))); err != nil {
		return statementError(fmt.Sprintf("grant %s to %s", pc.group, cred.User), err)
	}
	return nil
}

// Test implements Rotator: log in with the pending credential.
func (p *Rotator) Test(ctx context.Context, req *rotate.Request) error {
	pc, cred, err := parsePGRequest(req.Config, req.Pending)
	if err != nil {
		return err
	}
	return pgLogin(ctx, pc.connURL(cred), cred.User)
}

func pgLogin(ctx context.Context, dsn, user string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("log in as %s: %s", user, pgerr.Error(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("query as %s: %s", user, pgerr.Error(err))
	}
	return nil
}

// Revoke implements Rotator: the previous role may no longer log in. It
// refuses when the previous and current value name the same role, which
// would lock out the working credential, and when the previous role is
// not one this rotator manages (see revocable).
func (p *Rotator) Revoke(ctx context.Context, req *rotate.Request) error {
	pc, old, err := parsePGRequest(req.Config, req.Current)
	if err != nil {
		return err
	}
	if req.Pending != nil {
		now, err := pc.decode(req.Pending)
		if err != nil {
			return err
		}
		if now.User == old.User {
			return rotate.Permanent(errInvalid("postgres rotator: previous and current value use the same role %q; not revoking", tokenward.Printable(old.User)))
		}
	}
	conn, err := p.admin(ctx, pc)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exists, err := pc.revocable(ctx, conn, old.User)
	if err != nil || !exists {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER ROLE %s WITH NOLOGIN PASSWORD NULL", pgrole.QuoteIdent(old.User))); err != nil {
		return statementError("revoke role "+tokenward.Printable(old.User), err)
	}
	return nil
}

// revocable reports whether user exists, and refuses it unless it is a
// role this rotator manages. The previous value is whatever the secret
// held, which anyone who may write the secret chose, while the admin
// connection may alter any role: without this, a value naming the admin's
// own role, a superuser or another application's role would have that role
// lose its login at the end of grace. Managed are the two configured login
// roles and, so that the first rotation retires the application's login
// from before rotation was set up, a plain member of the group role; never
// the admin connection's own role or a superuser, and a member of the group
// only without ADMIN OPTION on it, CREATEROLE, BYPASSRLS or REPLICATION.
func (pc *pgConfig) revocable(ctx context.Context, conn *pgx.Conn, user string) (exists bool, err error) {
	var self, super, powers, member bool
	err = conn.QueryRow(ctx, `
SELECT r.rolname = session_user OR r.rolname = current_user, r.rolsuper,
       r.rolcreaterole OR r.rolbypassrls OR r.rolreplication,
       EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
               WHERE m.member = r.oid AND g.rolname = $2 AND NOT m.admin_option)
FROM pg_roles r WHERE r.rolname = $1`, user, pc.group).Scan(&self, &super, &powers, &member)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up role %s: %s", tokenward.Printable(user), pgerr.Error(err))
	}
	configured := user == pc.roles[0] || user == pc.roles[1]
	var why string
	switch {
	case self:
		why = "the admin connection's own role"
	case super:
		why = "a superuser"
	case configured:
		return true, nil
	case !member:
		why = fmt.Sprintf("neither one of the configured roles (%s, %s) nor a member of the group role %s",
			tokenward.Printable(pc.roles[0]), tokenward.Printable(pc.roles[1]), tokenward.Printable(pc.group))
	case powers:
		why = "not one of the configured roles and has CREATEROLE, BYPASSRLS or REPLICATION"
	default:
		return true, nil
	}
	// Permanent: a later try would refuse the same role again; the
	// operator retires it by hand if it should go.
	return true, rotate.Permanent(errInvalid("postgres rotator: previous user %q is %s; not revoking it (retire it by hand if it should no longer log in)",
		tokenward.Printable(user), why))
}

// statementError describes the failure of a statement on the admin
// connection (by pgerr, never by err.Error()). It is Permanent when the
// SQLSTATE says the statement, as the rotation's config and values make it,
// can never succeed: the admin role lacks the privilege (42501
// insufficient_privilege), a role it names does not exist (42704
// undefined_object), a role name is reserved or invalid (42939
// reserved_name, 42602 invalid_name), the statement is malformed (42601
// syntax_error), or a grant would make a role a member of itself (0LP01
// invalid_grant_operation). Everything else is left to the retries: lost
// connections, a standby refusing to write (25006), lock and statement
// timeouts, a role another session created meanwhile (42710).
func statementError(what string, err error) error {
	e := fmt.Errorf("%s: %s", what, pgerr.Error(err))
	switch pgerr.Code(err) {
	case "42501", "42704", "42939", "42602", "42601", "0LP01":
		return rotate.Permanent(e)
	}
	return e
}

// Discard implements Discarder: a pending role that never became CURRENT
// loses its login again.
func (p *Rotator) Discard(ctx context.Context, req *rotate.Request) error {
	return p.Revoke(ctx, &rotate.Request{RotationID: req.RotationID, Path: req.Path, Config: req.Config,
		Current: req.Pending, Pending: req.Current})
}

func errInvalid(format string, args ...any) error {
	return tokenward.Errorf(tokenward.EINVALID, format, args...)
}
