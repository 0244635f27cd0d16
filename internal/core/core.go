// Package core is tokenward's engine: it authenticates tokens, authorizes
// every operation against grants (deny by default), seals and opens values
// with envelope encryption, and stores through a tokenward.Store. The HTTP
// server is a thin layer over it.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/seal"
)

// DefaultMaxValueSize is the largest secret value accepted by default.
const DefaultMaxValueSize = 64 << 10

// Core is the engine. Create it with New, then Start its background work.
type Core struct {
	Store tokenward.Store
	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// Logger receives internal errors; never a value, token or key.
	Logger *slog.Logger
	// MaxValueSize bounds secret values in bytes.
	MaxValueSize int
	// TouchInterval is how often last-used times are written in a batch.
	TouchInterval time.Duration
	// TokenCacheTTL is the longest a token record is trusted without
	// reading the store again. With a store that has a
	// tokenward.ChangeClock (SQLite's and PostgreSQL's have), a record is
	// also dropped as soon as the clock moves, so a revocation made by
	// another server is seen within the clock's delay; the TTL bounds it
	// for a store without one. Revocations through this server and expiry
	// take effect at once. Zero disables the cache.
	TokenCacheTTL time.Duration
	// OIDC enables just-in-time CI credentials (bindings and exchange); nil disables them.
	OIDC *OIDC
	// Rotation enables rotation without downtime; nil disables it.
	Rotation *Rotation
	// Monitoring, when set, observes audit entries, stores anomalies and retires scopes (monitor.go).
	Monitoring *Monitoring
	// TokenRevoked, when set, is called after every revocation (by a
	// request or on the server's own authority) with the token's id: the
	// dynamic sources revoke the token's leases.
	TokenRevoked func(ctx context.Context, id string)
	// DBGateway enables database gateway routes (gateway_db.go); nil disables them.
	DBGateway *DBGateway

	tokens *tokenCache

	cascadeLimit int // tokens a cascading revocation may revoke; 0: DefaultCascadeLimit (tests lower it)

	unsealKey []byte
	keyring   atomic.Pointer[seal.Keyring]
	keyringMu sync.Mutex // serialises keyring reloads and rotations
	// keyringAt is the store's change generation plus one when the keyring
	// was read; 0 when the store could not tell (freshKeyring).
	keyringAt atomic.Uint64
	clock     tokenward.ChangeClock // the store's, or nil

	dataKeys sync.Map // dataKeyID -> *seal.Cipher; data keys never change once made

	usesMu sync.Mutex
	uses   map[string]tokenward.TokenUse

	stop chan struct{}
	done chan struct{}
}

type dataKeyID struct {
	project string
	version int
}

// New opens the keyring of store with the unseal key. A wrong key gives a
// clear error, never garbage.
func New(ctx context.Context, store tokenward.Store, unsealKey []byte) (*Core, error) {
	c := &Core{
		Store:         store,
		Now:           time.Now,
		Logger:        slog.New(slog.DiscardHandler),
		MaxValueSize:  DefaultMaxValueSize,
		TouchInterval: 2 * time.Second,
		TokenCacheTTL: 2 * time.Second,
		unsealKey:     unsealKey,
		uses:          map[string]tokenward.TokenUse{},
	}
	c.clock, _ = store.(tokenward.ChangeClock)
	if _, err := c.loadKeyring(ctx); err != nil {
		return nil, err
	}
	c.tokens = newTokenCache(100_000, c.clock)
	return c, nil
}

// loadKeyring reads and opens the store's keyring, makes it this engine's,
// and returns it sealed, as stored.
func (c *Core) loadKeyring(ctx context.Context) ([]byte, error) {
	var at uint64
	if c.clock != nil {
		if gen, ok := c.clock.Generation(); ok {
			at = gen + 1
		}
	}
	sealed, err := c.Store.Keyring(ctx)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return nil, errors.New("the data directory is not initialised: run `tokenward init` first")
	}
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	kr, err := seal.OpenKeyring(c.unsealKey, sealed)
	if err != nil {
		return nil, err
	}
	c.keyring.Store(kr)
	c.keyringAt.Store(at)
	return sealed, nil
}

// freshKeyring returns the keyring as the store has it now: the one in
// memory while the store's clock says nothing changed since it was read,
// else read again: another server may have rotated the master key (say,
// because the old one was exposed), and a new data key must be wrapped
// under the current one, not the one this server read at start. A store
// without a clock is read every time (only rare operations need this).
func (c *Core) freshKeyring(ctx context.Context) (*seal.Keyring, error) {
	if c.clock != nil {
		if gen, ok := c.clock.Generation(); ok && c.keyringAt.Load() == gen+1 {
			return c.keyring.Load(), nil
		}
	}
	c.keyringMu.Lock()
	defer c.keyringMu.Unlock()
	if _, err := c.loadKeyring(ctx); err != nil {
		return nil, err
	}
	return c.keyring.Load(), nil
}

// Init prepares an empty store: a new keyring sealed by unsealKey and the
// first admin token, which it returns. It refuses a store that has a keyring.
func Init(ctx context.Context, store tokenward.Store, unsealKey []byte, now time.Time) (string, error) {
	if _, err := store.Keyring(ctx); err == nil {
		return "", tokenward.Errorf(tokenward.ECONFLICT, "the store is initialised already")
	} else if tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		return "", err
	}
	secret, err := tokenward.NewTokenSecret(tokenward.TokenAdmin)
	if err != nil {
		return "", err
	}
	tok := &tokenward.Token{
		ID: tokenward.NewTokenID(), Name: "admin", Kind: tokenward.TokenAdmin, Owner: "admin",
		Grants:    tokenward.Grants{tokenward.MustParseGrant("admin:*/*/*")},
		CreatedAt: now.UTC(),
	}
	if err := store.CreateToken(ctx, tok, tokenward.HashToken(secret)); err != nil {
		return "", err
	}
	sealed, err := seal.SealKeyring(unsealKey, seal.NewKeyring())
	if err != nil {
		return "", err
	}
	if err := store.InitKeyring(ctx, sealed); err != nil {
		return "", err
	}
	return secret, nil
}

// Start runs the background work (batched last-used writes) until Close.
func (c *Core) Start() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.TouchInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				c.flushUses(context.Background())
				return
			case <-t.C:
				c.flushUses(context.Background())
			}
		}
	}()
}

// Close stops the background work and writes what is pending.
func (c *Core) Close() {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop = nil
	} else {
		c.flushUses(context.Background())
	}
}

func (c *Core) flushUses(ctx context.Context) {
	c.usesMu.Lock()
	if len(c.uses) == 0 {
		c.usesMu.Unlock()
		return
	}
	batch := make([]tokenward.TokenUse, 0, len(c.uses))
	for _, u := range c.uses {
		batch = append(batch, u)
	}
	c.uses = map[string]tokenward.TokenUse{}
	c.usesMu.Unlock()
	if err := c.Store.TouchTokens(ctx, batch); err != nil {
		c.Logger.Error("record token use", "err", err, "tokens", len(batch))
	}
}

// Authenticate checks a presented token and returns its record. Every
// failure is EUNAUTHORIZED with a message that never holds the token.
func (c *Core) Authenticate(ctx context.Context, raw, ip string) (*tokenward.Token, error) {
	return c.AuthenticateHashed(ctx, raw, tokenward.HashToken(raw), ip)
}

// AuthenticateHashed is Authenticate for a caller that has hashed raw
// already (hash is tokenward.HashToken(raw)), so a request hashes its
// token once.
func (c *Core) AuthenticateHashed(ctx context.Context, raw string, hash [32]byte, ip string) (*tokenward.Token, error) {
	if raw == "" {
		return nil, tokenward.Errorf(tokenward.EUNAUTHORIZED, "no token: send Authorization: Bearer <token>")
	}
	if _, err := tokenward.ParseToken(raw); err != nil {
		return nil, err
	}
	// The store looks the token up by its SHA-256; an equal hash is an equal
	// token, and the lookup does not compare the token itself byte by byte.
	now := c.Now()
	stamp := c.tokens.stamp(now, c.TokenCacheTTL)
	tok := c.tokens.get(hash, stamp, c.TokenCacheTTL)
	if tok == nil {
		var err error
		tok, err = c.Store.TokenByHash(ctx, hash)
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			return nil, tokenward.Errorf(tokenward.EUNAUTHORIZED, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		c.tokens.put(hash, tok, stamp)
	}
	if err := unusable(tok, now); err != nil {
		return nil, denyToken(tok, err)
	}
	c.usesMu.Lock()
	c.uses[tok.ID] = tokenward.TokenUse{ID: tok.ID, At: now.UTC(), IP: ip}
	c.usesMu.Unlock()
	return tok, nil
}

// unusable is why tok may not be used at now (revoked, or suspended,
// which revokes; expired), or nil.
func unusable(tok *tokenward.Token, now time.Time) *tokenward.Error {
	switch {
	case !tok.RevokedAt.IsZero():
		return tokenward.Errorf(tokenward.EUNAUTHORIZED, "token %s is revoked", tok.ID)
	case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		return tokenward.Errorf(tokenward.EUNAUTHORIZED, "token %s expired at %s", tok.ID, tok.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// storable reports whether t is the zero time (none) or one the stores
// keep as it is (tokenward.MinTime to MaxTime); the engine refuses others.
func storable(t time.Time) bool {
	return t.IsZero() || !t.Before(tokenward.MinTime) && !t.After(tokenward.MaxTime)
}

// forbidden is the error for a missing grant. It names what was needed, not
// what the token holds.
func forbidden(action tokenward.Action, resource string) error {
	return tokenward.Errorf(tokenward.EFORBIDDEN, "not granted: %s on %s", action, resource)
}

func require(tok *tokenward.Token, action tokenward.Action, project, env, name string) error {
	if !tok.Grants.Allows(action, project, env, name) {
		return forbidden(action, project+"/"+env+"/"+name)
	}
	return nil
}

// requireAnyIn checks project and env are valid names and tok may do
// action on something in project/env.
func requireAnyIn(tok *tokenward.Token, action tokenward.Action, project, env string) error {
	if err := validEnv(project, env); err != nil {
		return err
	}
	if !tok.Grants.AllowsAnyIn(action, project, env) {
		return forbidden(action, project+"/"+env+"/*")
	}
	return nil
}

// filter returns the elements of all that ok accepts. The result is never
// nil, so an answer with none is JSON [] whatever the store returned.
func filter[T any](all []T, ok func(T) bool) []T {
	out := []T{}
	for _, v := range all {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}

// dataKey returns the unwrapped data key project/version, ready to seal
// and open (its cipher built once per key, not per value), from the cache
// or the store.
func (c *Core) dataKey(ctx context.Context, project string, version int) (*seal.Cipher, error) {
	id := dataKeyID{project, version}
	if k, ok := c.dataKeys.Load(id); ok {
		return k.(*seal.Cipher), nil
	}
	dk, err := c.Store.DataKey(ctx, project, version)
	if err != nil {
		return nil, err
	}
	key, err := c.keyring.Load().UnwrapDataKey(project, version, dk.Wrapped)
	if err != nil {
		// Another server may have rotated the master key: reload once.
		c.keyringMu.Lock()
		_, rerr := c.loadKeyring(ctx)
		c.keyringMu.Unlock()
		if rerr != nil {
			return nil, fmt.Errorf("data key %s/%d: %w", project, version, err)
		}
		if key, err = c.keyring.Load().UnwrapDataKey(project, version, dk.Wrapped); err != nil {
			return nil, fmt.Errorf("data key %s/%d: %w", project, version, err)
		}
	}
	ciph, err := seal.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key %s/%d: %w", project, version, err)
	}
	k, _ := c.dataKeys.LoadOrStore(id, ciph)
	return k.(*seal.Cipher), nil
}

// currentDataKeyVersion is the data key version new values are sealed with.
// Projects have one data key today; the version travels in each ciphertext
// so data-key rotation can add more.
const currentDataKeyVersion = 1

func (c *Core) sealValue(ctx context.Context, project, env, name string, version int, value []byte) ([]byte, error) {
	key, err := c.dataKey(ctx, project, currentDataKeyVersion)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "project %s not found", project)
	}
	if err != nil {
		return nil, err
	}
	return key.Seal(currentDataKeyVersion, value, seal.ValueAAD(project, env, name, version))
}

func (c *Core) openValue(ctx context.Context, project, env, name string, version int, ct []byte) ([]byte, error) {
	var k keyMemo
	return c.openValueWith(ctx, &k, project, env, name, version, ct)
}

// keyMemo is the data key a loop over one project's values used last: they
// share one almost always, and looking it up for each of an environment
// fetch's values was about a seventh of opening them. buf, when its spare
// capacity holds a value, receives the plaintext, so a fetch's values
// share one allocation (EnvValues sizes it); it never grows, so no copy of
// a plaintext is left behind where wiping the values would not reach it.
type keyMemo struct {
	project string
	version uint32
	key     *seal.Cipher
	buf     []byte
	opener  seal.ValueOpener // one buffer for every value's associated data
}

// openValueWith is openValue with the data key remembered in k.
func (c *Core) openValueWith(ctx context.Context, k *keyMemo, project, env, name string, version int, ct []byte) ([]byte, error) {
	if len(ct) == 0 {
		// DestroyVersions erased it (tokenward.VersionDeleteStore).
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "version %d of %s/%s/%s was destroyed", version, project, env, name)
	}
	kv, err := seal.KeyID(ct)
	if err != nil {
		return nil, damaged(project, env, name, version, "its header is not one tokenward writes")
	}
	if k.key == nil || k.version != kv || k.project != project {
		key, err := c.dataKey(ctx, project, int(kv))
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			// A key version no data key has: the header was altered, not
			// the secret missing (a 404 would say the wrong thing).
			return nil, damaged(project, env, name, version, fmt.Sprintf("it names data key version %d, which the project does not have", kv))
		}
		if err != nil {
			return nil, err
		}
		k.project, k.version, k.key = project, kv, key
	}
	var dst []byte
	if n := len(k.buf); cap(k.buf)-n >= seal.PlaintextLen(ct) {
		dst = k.buf[n:n]
	}
	pt, err := k.opener.Open(k.key, dst, ct, project, env, name, version)
	if err != nil {
		return nil, damaged(project, env, name, version, "it fails authentication (altered, damaged, or copied from another row)")
	}
	if dst != nil {
		k.buf = k.buf[:len(k.buf)+len(pt)]
	}
	return pt[:len(pt):len(pt)], nil
}

// damaged is the error for a stored value that does not open although its
// data key does: the row was altered or damaged in the database. It names
// the row, never its bytes, so an operator knows which version to restore
// or overwrite; every other value keeps opening.
func damaged(project, env, name string, version int, why string) error {
	return tokenward.Errorf(tokenward.EINTERNAL, "the stored value of %s/%s/%s version %d does not open: %s; restore that row from a backup or write a new version", project, env, name, version, why)
}

// RotateKeys adds a new master key and rewraps every data key under it,
// online: values are not re-encrypted and every version stays readable.
// A rotation overtaken by another (on another server) or by a new project
// starts again from what the store then holds.
func (c *Core) RotateKeys(ctx context.Context, tok *tokenward.Token) (uint32, error) {
	if err := require(tok, tokenward.ActionAdmin, "*", "*", "*"); err != nil {
		return 0, err
	}
	c.keyringMu.Lock()
	defer c.keyringMu.Unlock()
	for attempt := 0; ; attempt++ {
		id, err := c.rotateKeys(ctx)
		if tokenward.ErrorCode(err) == tokenward.ECONFLICT && attempt < 4 {
			continue
		}
		return id, err
	}
}

// rotateKeys is one attempt of RotateKeys, with keyringMu held.
func (c *Core) rotateKeys(ctx context.Context) (uint32, error) {
	// The data keys are read before the keyring: each is wrapped under a
	// master key of a keyring stored before it was read, and a keyring is
	// only ever replaced by one that holds all its keys, so the keyring
	// read next opens every one.
	keys, err := c.Store.DataKeys(ctx)
	if err != nil {
		return 0, err
	}
	from, err := c.loadKeyring(ctx)
	if err != nil {
		return 0, err
	}
	old := c.keyring.Load()
	next := old.Rotate()
	for _, k := range keys {
		dk, err := old.UnwrapDataKey(k.Project, k.Version, k.Wrapped)
		if err != nil {
			return 0, err
		}
		if k.Wrapped, err = next.WrapDataKey(k.Project, k.Version, dk); err != nil {
			return 0, err
		}
	}
	to, err := seal.SealKeyring(c.unsealKey, next)
	if err != nil {
		return 0, err
	}
	// The store replaces the keyring only if it is still from, so no two
	// master keys ever share an id.
	if err := c.Store.RotateKeyring(ctx, from, to, keys); err != nil {
		return 0, err
	}
	c.keyring.Store(next)
	return next.Current(), nil
}
