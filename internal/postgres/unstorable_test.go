package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// TestUnstorableTextIsInvalid: a secret's description or owner holding a
// NUL byte (JSON "\u0000", valid UTF-8, which the API passes on) cannot be
// stored in PostgreSQL's text: the write is refused as the client's
// mistake (EINVALID, 400), not as an internal error (500).
func TestUnstorableTextIsInvalid(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := db.CreateProject(ctx, &tokenward.Project{Name: "a", Envs: []string{"dev"}, CreatedAt: at},
		&tokenward.DataKey{Project: "a", Version: 1, Wrapped: []byte("wa")}); err != nil {
		t.Fatal(err)
	}
	meta := &tokenward.Secret{Project: "a", Env: "dev", Name: "KEY", Description: "a\x00b", Owner: "team\x00"}
	err := db.PutSecret(ctx, meta, 0, &tokenward.SecretVersion{Version: 1, Ciphertext: []byte("c1"), CreatedAt: at, CreatedBy: "t"})
	if code := tokenward.ErrorCode(err); code != tokenward.EINVALID {
		t.Fatalf("put a description with NUL: got %v (code %q); want %q", err, code, tokenward.EINVALID)
	}
}
