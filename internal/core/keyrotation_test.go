package core_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/seal"
)

// overtakenStore runs overtake just before its first RotateKeyring, and
// then after it, as a rotation on another server would if it committed
// while this one was rewrapping.
type overtakenStore struct {
	tokenward.Store
	once            sync.Once
	overtake, after func()
}

func (s *overtakenStore) RotateKeyring(ctx context.Context, from, to []byte, keys []*tokenward.DataKey) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.overtake()
	}
	err := s.Store.RotateKeyring(ctx, from, to, keys)
	if first {
		s.after()
	}
	return err
}

// heldStore holds CreateProject until release is closed, as PostgreSQL
// holds an insert into data_keys while a rotation locks the table.
type heldStore struct {
	tokenward.Store
	hold             bool
	waiting, release chan struct{}
}

func (s *heldStore) CreateProject(ctx context.Context, p *tokenward.Project, key *tokenward.DataKey) error {
	if s.hold {
		close(s.waiting)
		<-s.release
	}
	return s.Store.CreateProject(ctx, p, key)
}

// TestOvertakenKeyRotation: server B reads the keyring and starts a
// rotation; server A rotates (master key 2) and wraps a new project's data
// key under its key 2, an insert that waits for B's transaction. B's
// rotation must not then store a keyring of its own whose key 2 is another
// key: the project's data key would never open again. B starts again from
// A's keyring, and every value opens on a fresh engine.
func TestOvertakenKeyRotation(t *testing.T) {
	f := mustFixture(t)
	f.put(t, "prod", "KEY", "before")
	held := &heldStore{Store: f.db, waiting: make(chan struct{}), release: make(chan struct{})}
	a, err := core.New(t.Context(), held, f.key)
	if err != nil {
		t.Fatal(err)
	}
	var aTerm uint32
	created := make(chan error, 1)
	overtaken := &overtakenStore{Store: f.db,
		overtake: func() {
			var err error
			if aTerm, err = a.RotateKeys(t.Context(), f.admin); err != nil {
				t.Error(err)
			}
			held.hold = true
			go func() {
				_, err := a.CreateProject(t.Context(), f.admin, "late", []string{"prod"})
				created <- err
			}()
			<-held.waiting
		},
		after: func() {
			close(held.release)
			if err := <-created; err != nil {
				t.Error(err)
			}
		},
	}
	b, err := core.New(t.Context(), overtaken, f.key)
	if err != nil {
		t.Fatal(err)
	}
	bTerm, err := b.RotateKeys(t.Context(), f.admin)
	if err != nil {
		t.Fatal(err)
	}
	if aTerm != 2 || bTerm != 3 {
		t.Errorf("rotations returned master keys %d (A) and %d (B); want 2 and 3, never one id twice", aTerm, bTerm)
	}
	keys, err := f.db.DataKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if id, _ := seal.KeyID(k.Wrapped); id != bTerm {
			t.Errorf("data key %s wrapped by master key %d; want %d, the last rotation's", k.Project, id, bTerm)
		}
	}
	fresh, err := core.New(t.Context(), f.db, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.PutSecret(t.Context(), f.admin, core.PutSecretInput{Project: "late", Env: "prod", Name: "K", Value: []byte("v")}); err != nil {
		t.Fatalf("write in the project made during the rotations: %v", err)
	}
	if _, got, err := fresh.GetSecret(t.Context(), f.admin, "payments", "prod", "KEY", 0); err != nil || string(got) != "before" {
		t.Fatalf("got %q, %v; want the value from before the rotations", got, err)
	}
}
