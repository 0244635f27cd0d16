package sqlrow

import (
	"encoding/json"
	"maps"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/oidc"
	"github.com/tokenward/tokenward/internal/rotate"
)

// Column lists, in the order the scan functions read them.
const (
	SecretCols  = `project, env, name, owner, description, tags, expires_at, version, created_at, updated_at, updated_by`                       // #nosec G101 -- SQL column lists, not credentials
	SecretColsS = `s.project, s.env, s.name, s.owner, s.description, s.tags, s.expires_at, s.version, s.created_at, s.updated_at, s.updated_by` // #nosec G101 -- a SQL column list, not a credential
)

const TokenCols = `id, name, kind, owner, created_by, grants, ci, created_at, expires_at, revoked_at, last_used_at, last_used_ip` // #nosec G101 -- a SQL column list, not a credential

const AuditCols = `seq, time, request_id, token_id, token_name, action, resource, outcome, reason, status, source_ip, user_agent, ci, meta, prev_hash, hash`

const AnomalyCols = `id, body, acked_at, acked_by`

const BindingCols = `name, issuer, audiences, conditions, grants, ttl, enabled, created_at, updated_at, created_by`

const RotationCols = `id, path, rotator, config, grace, reason, step, attempt, current_version, pending_version,
	created_at, updated_at, next_at, finished_at, error, rev`

const ConsoleSessionCols = `token_id, sealed_token, created_at, last_seen_at, expires_at`

const PolicyCols = `path, every, cron, jitter, grace, rotator, config, disabled, last_at, next_at`

func ScanToken(r Row) (*tokenward.Token, error) {
	t := &tokenward.Token{}
	if err := r.Scan(&t.ID, &t.Name, &t.Kind, &t.Owner, &t.CreatedBy, JSONCol(&t.Grants), JSONCol(&t.CI),
		TimeCol(&t.CreatedAt), TimeCol(&t.ExpiresAt), TimeCol(&t.RevokedAt), TimeCol(&t.LastUsedAt), &t.LastUsedIP); err != nil {
		return nil, err
	}
	t.CI = OrNilMap(t.CI)
	return t, nil
}

// ScanSecret reads a row of SecretCols, then extra.
func ScanSecret(r Row, extra ...any) (*tokenward.Secret, error) {
	s := &tokenward.Secret{}
	if err := r.Scan(append([]any{&s.Project, &s.Env, &s.Name, &s.Owner, &s.Description, JSONCol(&s.Tags), TimeCol(&s.ExpiresAt),
		&s.Version, TimeCol(&s.CreatedAt), TimeCol(&s.UpdatedAt), &s.UpdatedBy}, extra...)...); err != nil {
		return nil, err
	}
	s.Tags = OrNilSlice(s.Tags)
	return s, nil
}

// ScanCurrent reads a row of currentJoin.
func ScanCurrent(r Row) (*tokenward.Secret, *tokenward.SecretVersion, error) {
	v := &tokenward.SecretVersion{}
	s, err := ScanSecret(r, &v.Ciphertext, TimeCol(&v.CreatedAt), &v.CreatedBy)
	if err != nil {
		return nil, nil, err
	}
	v.Version = s.Version
	return s, v, nil
}

// VersionStateCols are the columns ScanVersionState reads from
// secret_versions.
const VersionStateCols = `version, deleted_at, destroyed_at`

// ScanVersionState reads a version's number and state (VersionStateCols).
func ScanVersionState(r Row) (int, tokenward.VersionState, error) {
	var v int
	var st tokenward.VersionState
	err := r.Scan(&v, TimeCol(&st.DeletedAt), TimeCol(&st.DestroyedAt))
	return v, st, err
}

func ScanDataKey(r Row) (*tokenward.DataKey, error) {
	k := &tokenward.DataKey{}
	return k, r.Scan(&k.Project, &k.Version, &k.Wrapped)
}

func ScanAudit(r Row) (*tokenward.AuditEntry, error) {
	e := &tokenward.AuditEntry{}
	var ci, meta string
	if err := r.Scan(&e.Seq, TimeCol(&e.Time), &e.RequestID, &e.TokenID, &e.TokenName, &e.Action, &e.Resource, &e.Outcome, &e.Reason,
		&e.Status, &e.SourceIP, &e.UserAgent, &ci, &meta, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	// A row whose JSON was tampered with still loads (with the maps empty),
	// so verify reports the entry as modified instead of failing to read.
	if json.Unmarshal([]byte(ci), &e.CI) != nil || len(e.CI) == 0 {
		e.CI = nil
	}
	if json.Unmarshal([]byte(meta), &e.Meta) != nil || len(e.Meta) == 0 {
		e.Meta = nil
	}
	return e, nil
}

func ScanAnomaly(row Row) (*monitor.Record, error) {
	r := &monitor.Record{}
	return r, row.Scan(&r.ID, JSONCol(&r.Anomaly), TimeCol(&r.AckedAt), &r.AckedBy)
}

func ScanBinding(r Row) (*oidc.Binding, error) {
	b := &oidc.Binding{}
	return b, r.Scan(&b.Name, &b.Issuer, JSONCol(&b.Audiences), JSONCol(&b.Claims), JSONCol(&b.Grants), &b.TTL, BoolCol(&b.Enabled),
		TimeCol(&b.CreatedAt), TimeCol(&b.UpdatedAt), &b.CreatedBy)
}

func ScanRotation(row Row) (*rotate.Rotation, error) {
	r := &rotate.Rotation{}
	if err := row.Scan(&r.ID, &r.Path, &r.Rotator, JSONCol(&r.Config), &r.Grace, &r.Reason, &r.Step, &r.Attempt, &r.CurrentVersion, &r.PendingVersion,
		TimeCol0(&r.CreatedAt), TimeCol0(&r.UpdatedAt), TimeCol0(&r.NextAt), TimeCol0(&r.FinishedAt), &r.Error, &r.Rev); err != nil {
		return nil, err
	}
	r.Config = OrNilMap(r.Config)
	return r, nil
}

func ScanPolicy(row Row) (*rotate.Policy, error) {
	p := &rotate.Policy{}
	if err := row.Scan(&p.Path, &p.Every, &p.Cron, &p.Jitter, &p.Grace, &p.Rotator, JSONCol(&p.Config), BoolCol(&p.Disabled),
		TimeCol0(&p.LastAt), TimeCol0(&p.NextAt)); err != nil {
		return nil, err
	}
	p.Config = OrNilMap(p.Config)
	return p, nil
}

// CheckpointCols are the columns ScanCheckpoint reads.
const CheckpointCols = `seq, hash, time, key_id, signature`

// ScanCheckpoint reads one row of CheckpointCols.
func ScanCheckpoint(r Row) (*audit.Checkpoint, error) {
	cp := &audit.Checkpoint{}
	return cp, r.Scan(&cp.Seq, &cp.Hash, TimeCol(&cp.Time), &cp.KeyID, &cp.Signature)
}

// WithID is row with a leading id column scanned into id before the
// columns a scan function reads.
func WithID(row Row, id *int64) Row { return withID{row, id} }

type withID struct {
	row Row
	id  *int64
}

func (r withID) Scan(dest ...any) error { return r.row.Scan(append([]any{r.id}, dest...)...) }

const BulkJobCols = `id, owner, status, planned, started_at, updated_at, finished_at, items, error`

func ScanBulkJob(row Row) (*rotate.BulkJob, error) {
	j := &rotate.BulkJob{}
	if err := row.Scan(&j.ID, &j.Owner, &j.Status, &j.Planned, TimeCol0(&j.StartedAt), TimeCol0(&j.UpdatedAt), TimeCol0(&j.FinishedAt),
		JSONCol(&j.Items), &j.Error); err != nil {
		return nil, err
	}
	if j.Items == nil {
		j.Items = []rotate.BulkItem{}
	}
	return j, nil
}

// BulkItems is the items column's argument: [] when there are none.
func BulkItems(items []rotate.BulkItem) string {
	if len(items) == 0 {
		return "[]"
	}
	// #nosec G117 -- BulkItem.Secret is the secret's path (project/env/name), never its value
	b, _ := json.Marshal(items) // strings only: it cannot fail
	return string(b)
}

const DynamicSourceCols = `project, env, name, kind, config, ttl, max_ttl, max_leases, created_by, created_at, updated_at`

func ScanDynamicSource(r Row) (*tokenward.DynamicSource, error) {
	s := &tokenward.DynamicSource{}
	var ttl, maxTTL int64
	if err := r.Scan(&s.Project, &s.Env, &s.Name, &s.Kind, JSONCol(&s.Config), &ttl, &maxTTL, &s.MaxLeases, &s.CreatedBy,
		TimeCol0(&s.CreatedAt), TimeCol0(&s.UpdatedAt)); err != nil {
		return nil, err
	}
	s.TTL, s.MaxTTL = time.Duration(ttl), time.Duration(maxTTL)
	if s.Config == nil {
		s.Config = map[string]string{}
	}
	return s, nil
}

// DynamicSourceArgs are s's columns in DynamicSourceCols order.
func DynamicSourceArgs(s *tokenward.DynamicSource) []any {
	return []any{s.Project, s.Env, s.Name, s.Kind, JSONObject(s.Config), int64(s.TTL), int64(s.MaxTTL), s.MaxLeases, s.CreatedBy,
		Nanos(s.CreatedAt), Nanos(s.UpdatedAt)}
}

const LeaseCols = `id, project, env, name, kind, role, token_id, job, state, created_at, expires_at, max_expires_at, revoked_at,
	reason, attempts, next_attempt_at, error`

func ScanLease(r Row) (*tokenward.Lease, error) {
	l := &tokenward.Lease{}
	if err := r.Scan(&l.ID, &l.Project, &l.Env, &l.Name, &l.Kind, &l.Role, &l.TokenID, &l.Job, &l.State,
		TimeCol0(&l.CreatedAt), TimeCol0(&l.ExpiresAt), TimeCol0(&l.MaxExpiresAt), TimeCol0(&l.RevokedAt),
		&l.Reason, &l.Attempts, TimeCol0(&l.NextAttemptAt), &l.Error); err != nil {
		return nil, err
	}
	return l, nil
}

// LeaseArgs are l's columns in LeaseCols order.
func LeaseArgs(l *tokenward.Lease) []any {
	return []any{l.ID, l.Project, l.Env, l.Name, l.Kind, l.Role, l.TokenID, l.Job, string(l.State),
		Nanos(l.CreatedAt), Nanos(l.ExpiresAt), Nanos(l.MaxExpiresAt), Nanos(l.RevokedAt),
		l.Reason, l.Attempts, Nanos(l.NextAttemptAt), l.Error}
}

// LeaseUpdateArgs are the columns UPDATE leases SET writes, in the order
// of LeaseUpdateSet, then the id.
func LeaseUpdateArgs(l *tokenward.Lease) []any {
	return []any{string(l.State), Nanos(l.ExpiresAt), Nanos(l.RevokedAt), l.Reason, l.Attempts, Nanos(l.NextAttemptAt), l.Error, l.ID}
}

// LeaseUpdateSet names what UpdateLease writes, with ? placeholders.
const LeaseUpdateSet = `state = ?, expires_at = ?, revoked_at = ?, reason = ?, attempts = ?, next_attempt_at = ?, error = ?`

// LeaseFilterWhere is the WHERE clause (with ? placeholders, always
// non-empty) and arguments of f, over leases' own columns.
func LeaseFilterWhere(f tokenward.LeaseFilter) (string, []any) {
	where, args := []string{"1 = 1"}, []any{}
	if p := strings.TrimSuffix(f.Prefix, "/"); p != "" {
		// Whole segments, without LIKE (whose wildcards a path may hold):
		// acme/prod/db is that source, not acme/prod/db2 as well.
		where = append(where, "(project || '/' || env || '/' || name = ? OR substr(project || '/' || env || '/' || name, 1, ?) = ?)")
		args = append(args, p, len(p)+1, p+"/")
	}
	if f.TokenID != "" {
		where = append(where, "token_id = ?")
		args = append(args, f.TokenID)
	}
	if f.Live {
		where = append(where, "state <> 'revoked'")
	}
	return strings.Join(where, " AND "), args
}

// The lease store's statements, with ? placeholders (PostgreSQL numbers
// them), shared by both backends.
const (
	PutDynamicSourceSQL = `INSERT INTO dynamic_sources (` + DynamicSourceCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, env, name) DO UPDATE SET kind = excluded.kind, config = excluded.config, ttl = excluded.ttl,
		max_ttl = excluded.max_ttl, max_leases = excluded.max_leases, updated_at = excluded.updated_at`
	DynamicSourceSQL  = `SELECT ` + DynamicSourceCols + ` FROM dynamic_sources WHERE project = ? AND env = ? AND name = ?`
	DynamicSourcesSQL = `SELECT ` + DynamicSourceCols + ` FROM dynamic_sources ORDER BY project, env, name`
	LiveBySourceSQL   = `SELECT count(*) FROM leases WHERE project = ? AND env = ? AND name = ? AND state <> 'revoked'`
	LiveByTokenSQL    = `SELECT count(*) FROM leases WHERE token_id = ? AND state <> 'revoked'` // #nosec G101 -- a SQL query, not a credential
	DeleteSourceSQL   = `DELETE FROM dynamic_sources WHERE project = ? AND env = ? AND name = ?`
	InsertLeaseSQL    = `INSERT INTO leases (` + LeaseCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	UpdateLeaseSQL    = `UPDATE leases SET ` + LeaseUpdateSet + ` WHERE id = ? AND state = ?`
	LeaseSQL          = `SELECT ` + LeaseCols + ` FROM leases WHERE id = ?`
	LeaseExistsSQL    = `SELECT count(*) FROM leases WHERE id = ?`
	// DueLeasesSQL takes now, now, staleBefore, now, limit. The least
	// tried come first (a lease not yet tried has 0 attempts and no next
	// attempt), then the longest due: each failed attempt puts its lease
	// behind those tried fewer times, so revocations that keep failing
	// cannot fill every batch ahead of the rest, however old they are.
	DueLeasesSQL = `SELECT ` + LeaseCols + ` FROM leases l WHERE
		(l.state = 'active' AND (l.expires_at <= ? OR EXISTS (SELECT 1 FROM tokens t WHERE t.id = l.token_id
			AND (t.revoked_at IS NOT NULL OR (t.expires_at IS NOT NULL AND t.expires_at <= ?)))))
		OR (l.state = 'creating' AND l.created_at <= ?)
		OR (l.state = 'revoking' AND l.next_attempt_at <= ?)
		ORDER BY l.attempts, l.next_attempt_at, l.created_at, l.id LIMIT ?`
	PruneLeasesSQL = `DELETE FROM leases WHERE state = 'revoked' AND revoked_at < ?`
)

// SourceAtPathSQL and SecretAtPathSQL count what holds a path, in the
// transaction that would claim it: a dynamic source and a stored secret
// may not share one (tokenward.SecretAtSourcePath).
const (
	SourceAtPathSQL = `SELECT count(*) FROM dynamic_sources WHERE project = ? AND env = ? AND name = ?`
	SecretAtPathSQL = `SELECT count(*) FROM secrets WHERE project = ? AND env = ? AND name = ?` // #nosec G101 -- a SQL query, not a credential
	// ArchivedAtSourcesSQL counts an archived environment's secrets whose
	// paths dynamic sources took since: restoring it would share them.
	ArchivedAtSourcesSQL = `SELECT count(*) FROM archived_secrets a JOIN dynamic_sources d USING (project, env, name) WHERE a.project = ? AND a.env = ?`
	// PruneTokensSQL deletes up to the third argument's count of tokens
	// revoked or expired before the first (and second, the same instant)
	// that no live lease names, oldest first, returning their ids.
	PruneTokensSQL = `DELETE FROM tokens WHERE id IN (SELECT t.id FROM tokens t WHERE (t.revoked_at < ? OR t.expires_at < ?)
		AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.token_id = t.id AND l.state <> 'revoked') ORDER BY t.created_at, t.id LIMIT ?) RETURNING id`
	// PrunedStaleNoticesSQL and PrunedConsoleSessionsSQL drop what named
	// pruned tokens.
	PrunedStaleNoticesSQL    = `DELETE FROM stale_notices WHERE token_id NOT IN (SELECT id FROM tokens)`
	PrunedConsoleSessionsSQL = `DELETE FROM console_sessions WHERE token_id NOT IN (SELECT id FROM tokens)`
	// ActiveTokensSQL counts the tokens neither revoked nor expired at
	// its argument.
	ActiveTokensSQL = `SELECT count(*) FROM tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)` // #nosec G101 -- a SQL query, not a credential
	// ArchivedEnvSQL counts project/env's archive (0 or 1): CreateLease
	// refuses an archived environment.
	ArchivedEnvSQL = `SELECT count(*) FROM archived_envs WHERE project = ? AND env = ?`
)

// LeasesSQL is the query of Leases for f, and its arguments.
func LeasesSQL(f tokenward.LeaseFilter) (string, []any) {
	where, args := LeaseFilterWhere(f)
	return `SELECT ` + LeaseCols + ` FROM leases WHERE ` + where + ` ORDER BY created_at, id`, args
}

// LeaseLimitError is CreateLease's refusal when l's source or token holds
// as many live leases as limits allow, else nil.
func LeaseLimitError(l *tokenward.Lease, limits tokenward.LeaseLimits, bySource, byToken int) error {
	switch {
	case limits.PerSource > 0 && bySource >= limits.PerSource:
		return tokenward.Errorf(tokenward.ERATELIMITED, "dynamic source %s has %d live leases (at most %d); revoke some or let them expire",
			tokenward.Printable(l.Source()), bySource, limits.PerSource)
	case limits.PerToken > 0 && byToken >= limits.PerToken:
		return tokenward.Errorf(tokenward.ERATELIMITED, "token %s holds %d live leases (at most %d); revoke some or let them expire",
			tokenward.Printable(l.TokenID), byToken, limits.PerToken)
	}
	return nil
}

// SourceChangeError is PutDynamicSource's refusal to replace old (nil:
// none stored) with s while live leases of it exist and s changes its kind
// or config, else nil. These say where and how the leases' credentials are
// revoked: changed, revocation would run against another database, or
// other SQL, and the credentials would stay where they were made. Its
// TTLs and cap may change.
func SourceChangeError(old, s *tokenward.DynamicSource, live int) error {
	if old == nil || live == 0 || (old.Kind == s.Kind && maps.Equal(old.Config, s.Config)) {
		return nil
	}
	path := tokenward.Printable(s.Path())
	return tokenward.Errorf(tokenward.ECONFLICT, "dynamic source %s has %d live leases, revoked through its current kind and config; "+
		"revoke them first (`tokenward lease revoke --prefix %s`) and wait until `tokenward lease list --prefix %s` shows none live, "+
		"or let them expire; its ttl, max ttl and max leases may change meanwhile", path, live, path, path)
}

// LeaseUpdateError is UpdateLease's error when no row changed: the lease
// is missing, or not in state from.
func LeaseUpdateError(id string, from tokenward.LeaseState, exists bool) error {
	if !exists {
		return tokenward.Errorf(tokenward.ENOTFOUND, "lease %s not found", tokenward.Printable(id))
	}
	return tokenward.Errorf(tokenward.ECONFLICT, "lease %s is no longer %s", tokenward.Printable(id), from)
}

const GatewayRouteCols = `name, upstream, secret, user_secret, inject, allow, rate, allow_nets, ca_bundle, timeout, created_at, created_by`

// DeleteGatewayRouteAsStoredSQL deletes the route whose every column
// (GatewayRouteCols) equals GatewayRouteArgs: a route replaced since it
// was read is left alone.
var DeleteGatewayRouteAsStoredSQL = deleteAsStoredSQL("gateway_routes", GatewayRouteCols)

// DeleteDBRouteAsStoredSQL is the same for a database route: the row
// whose every column (DBRouteCols) equals DBRouteArgs.
var DeleteDBRouteAsStoredSQL = deleteAsStoredSQL("gateway_db_routes", DBRouteCols)

// deleteAsStoredSQL deletes the row of table whose every column of cols
// (", "-separated, none nullable) equals the argument in its place.
func deleteAsStoredSQL(table, cols string) string {
	return `DELETE FROM ` + table + ` WHERE ` + strings.Join(strings.Split(cols, ", "), " = ? AND ") + " = ?"
}

// DBRouteArgs are the values of DBRouteCols for r, the creation time in
// Unix nanoseconds.
func DBRouteArgs(r *tokenward.DBRoute) []any {
	return []any{r.Name, r.Upstream, r.Project, r.Env, r.Secret, r.CreatedAt.UnixNano(), r.CreatedBy}
}

// GatewayRouteArgs are the values of GatewayRouteCols for r: the lists as
// JSON arrays ([] when empty), the timeout in nanoseconds.
func GatewayRouteArgs(r *tokenward.GatewayRoute) []any {
	allow, _ := json.Marshal(OrEmpty(r.Allow)) // a []string always marshals
	nets, _ := json.Marshal(OrEmpty(r.AllowNets))
	return []any{r.Name, r.Upstream, r.Secret, r.UserSecret, r.Inject, string(allow), r.Rate, string(nets), r.CABundle,
		int64(r.Timeout), r.CreatedAt.UnixNano(), r.CreatedBy}
}

func ScanGatewayRoute(row Row) (*tokenward.GatewayRoute, error) {
	r := &tokenward.GatewayRoute{}
	if err := row.Scan(&r.Name, &r.Upstream, &r.Secret, &r.UserSecret, &r.Inject, JSONCol(&r.Allow), &r.Rate, JSONCol(&r.AllowNets),
		&r.CABundle, &r.Timeout, TimeCol(&r.CreatedAt), &r.CreatedBy); err != nil {
		return nil, err
	}
	r.Allow = OrNilSlice(r.Allow)
	r.AllowNets = OrNilSlice(r.AllowNets)
	return r, nil
}

// OrEmpty returns s, or an empty slice for nil.
func OrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func ScanConsoleSession(r Row) (*tokenward.ConsoleSession, error) {
	s := &tokenward.ConsoleSession{}
	return s, r.Scan(&s.TokenID, &s.SealedToken, TimeCol(&s.CreatedAt), TimeCol(&s.LastSeenAt), TimeCol(&s.ExpiresAt))
}

// Expiry alerts (core.MonitorStore), the same SQL in both stores.
const (
	// ClaimExpiryAlertSQL records an alert of the first argument at the
	// second unless one was recorded after the third: one row changed
	// means the caller alerts.
	ClaimExpiryAlertSQL = `INSERT INTO expiry_alerts (item, alerted_at) VALUES (?, ?)
	ON CONFLICT (item) DO UPDATE SET alerted_at = excluded.alerted_at WHERE expiry_alerts.alerted_at <= ?`
	// PruneExpiryAlertsSQL forgets alerts recorded before the argument.
	PruneExpiryAlertsSQL = `DELETE FROM expiry_alerts WHERE alerted_at < ?`
)

// DeletedAsStored is the outcome of deleting name's row as it was read
// (DeleteGatewayRouteAsStoredSQL, DeleteDBRouteAsStoredSQL): err is the
// delete's, ENOTFOUND when no row matched; then lookup tells whether
// another row holds the name now (ECONFLICT: it changed since it was
// read) or none does (err).
func DeletedAsStored(err error, name string, lookup func() error) error {
	if tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		return err
	}
	switch lerr := lookup(); tokenward.ErrorCode(lerr) {
	case "":
		return tokenward.Errorf(tokenward.ECONFLICT, "route %s changed since it was read (replaced by another request or server); read it again", name)
	case tokenward.ENOTFOUND:
		return err
	default:
		return lerr
	}
}
