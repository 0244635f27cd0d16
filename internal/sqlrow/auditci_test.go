package sqlrow

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestCIRefsPlan: a batch's entries are grouped by CI object (the same map
// or equal maps: one object), entries without CI stay inline, and ids are
// known only after Committed.
func TestCIRefsPlan(t *testing.T) {
	a, a2, b := map[string]string{"repository": "acme/api", "run_id": "1"}, map[string]string{"run_id": "1", "repository": "acme/api"}, map[string]string{"repository": "acme/web"}
	es := []*tokenward.AuditEntry{{CI: a}, {}, {CI: a2}, {CI: b}, {CI: a}, {CI: map[string]string{}}}
	var r CIRefs

	plan := r.Plan(es)
	if got, want := fmt.Sprint(plan.IDs, plan.NewOf), "[0 0 0 0 0 0] [0 -1 0 1 0 -1]"; got != want {
		t.Fatalf("first plan: got IDs, NewOf %s; want %s", got, want)
	}
	if got, want := plan.New[0].JSON, `{"repository":"acme/api","run_id":"1"}`; got != want {
		t.Fatalf("got JSON %s; want %s", got, want)
	}
	if plan.New[0].Digest != sha256.Sum256([]byte(plan.New[0].JSON)) {
		t.Fatal("got a digest that is not the SHA-256 of the JSON")
	}
	if got, want := fmt.Sprintln(plan.InlineCI(es, 0), plan.InlineCI(es, 1), plan.InlineCI(es, 5)), "{} {} {}\n"; got != want {
		t.Fatalf("inline ci: got %s; want %s", got, want)
	}
	plan.Resolve(0, 7)
	plan.Resolve(1, 8)
	if got, want := fmt.Sprint(plan.IDs), "[7 0 7 8 7 0]"; got != want {
		t.Fatalf("resolved: got %s; want %s", got, want)
	}

	// Not committed (rolled back): nothing is known.
	if again := r.Plan(es); len(again.New) != 2 {
		t.Fatalf("after a rollback: got %d new objects; want 2", len(again.New))
	}
	r.Committed(plan)
	again := r.Plan(append(es, &tokenward.AuditEntry{CI: map[string]string{"repository": "acme/api", "run_id": "1"}}))
	if got, want := fmt.Sprint(again.IDs, len(again.New)), "[7 0 7 8 7 0 7] 0"; got != want {
		t.Fatalf("after the commit: got IDs, new %s; want %s", got, want)
	}
	if got := again.InlineCI(es, 0); got != "{}" {
		t.Fatalf("a referenced entry's inline ci: got %s; want {}", got)
	}
}

// TestCIRefsBounded: past ciRefsMax objects the maps start over.
func TestCIRefsBounded(t *testing.T) {
	var r CIRefs
	for i := range ciRefsMax + 1 {
		p := r.Plan([]*tokenward.AuditEntry{{CI: map[string]string{"run_id": fmt.Sprint(i)}}})
		p.Resolve(0, int64(i+1))
		r.Committed(p)
	}
	if len(r.byDigest) != 1 || len(r.byMap) != 1 {
		t.Fatalf("got %d digests, %d maps remembered; want 1, 1 after starting over", len(r.byDigest), len(r.byMap))
	}
}
