package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

// Example records entries through a broker on a file store, then verifies
// the store with the install's public key.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	key, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		panic(err)
	}
	signer, _ := audit.NewSigner(key)
	store := audit.NewFileStore(filepath.Join(dir, "audit"))
	if err := store.Open(); err != nil {
		panic(err)
	}
	defer store.Close()

	b := audit.NewBroker(store, signer, audit.NewFileSink(filepath.Join(dir, "audit.log")))
	if err := b.Open(ctx); err != nil {
		panic(err)
	}
	for _, action := range []string{"secret.read", "token.create"} {
		e := &tokenward.AuditEntry{Action: action, Outcome: tokenward.OutcomeAllowed, TokenName: "ci"}
		if err := b.Record(ctx, e); err != nil {
			// Fail closed: the request is refused.
			panic(err)
		}
	}
	b.Close(ctx) // signs a final checkpoint

	cps, _ := store.AuditCheckpoints(ctx)
	r, err := audit.Verify(store.AuditEntries(ctx), cps, signer.PublicKey())
	if err != nil {
		panic(err)
	}
	fmt.Println(r.OK(), r.LastSeq, r.LastCheckpointSeq)
	// Output: true 2 2
}
