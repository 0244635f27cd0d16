package postgres

import (
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

// TestOwnWritesWithoutNotifications: with no listener at all, every kind
// of write this process makes — a statement on its own, a transaction, a
// batch in a transaction, a failed write — moves the clock before it
// returns, so the read cache answers the next read with it (#20). A read
// does not move it, nor does an audit append: one per request would empty
// the read cache as fast as it fills.
func TestOwnWritesWithoutNotifications(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t)
	db.listener.close() // no notifications from here on
	db.listener = nil
	db.clock.up()
	now := time.Now()
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"e"}, CreatedAt: now}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	tok := &tokenward.Token{ID: "tok_1", Name: "t", Kind: tokenward.TokenService, Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/e/*")}, CreatedAt: now}
	for _, s := range []struct {
		name  string
		do    func() error
		moves bool
	}{
		{"insert", func() error { return db.CreateToken(ctx, tok, [32]byte{1}) }, true},
		{"read", func() error { _, err := db.Token(ctx, "tok_1"); return err }, false},
		{"update", func() error { return db.RevokeToken(ctx, "tok_1", now) }, true},
		{"transaction", func() error {
			return db.PutSecret(ctx, &tokenward.Secret{Project: "p", Env: "e", Name: "K", Version: 1, CreatedAt: now, UpdatedAt: now}, 0,
				&tokenward.SecretVersion{Version: 1, Ciphertext: []byte{1}, CreatedAt: now})
		}, true},
		{"batch", func() error { return db.TouchTokens(ctx, []tokenward.TokenUse{{ID: "tok_1", At: now}}) }, true},
		{"audit append (no cache reads the trail)", func() error {
			return db.AppendChained(ctx, []*tokenward.AuditEntry{{Time: now, Action: "secret.read", Outcome: tokenward.OutcomeAllowed, Status: 200}})
		}, false},
		{"audit checkpoint", func() error {
			return db.AppendCheckpoint(ctx, &audit.Checkpoint{Seq: 1, Hash: "h", Time: now, KeyID: "k", Signature: []byte{1}})
		}, false},
		{"failed write", func() error {
			if db.CreateToken(ctx, tok, [32]byte{1}) == nil {
				t.Fatal("a second token with the same id: got no error")
			}
			return nil
		}, true},
	} {
		before, _ := db.Generation()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		after, ok := db.Generation()
		if !ok || (after > before) != s.moves {
			t.Errorf("%s: generation %d -> %d (ok %v); want moved=%v", s.name, before, after, ok, s.moves)
		}
	}
	got, err := db.Token(ctx, "tok_1")
	if err != nil || got.RevokedAt.IsZero() {
		t.Errorf("token after its revocation: got %v, %v; want revoked", got, err)
	}
}
