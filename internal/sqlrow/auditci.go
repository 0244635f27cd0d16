package sqlrow

import (
	"crypto/sha256"
	"reflect"
	"sync"

	"github.com/tokenward/tokenward"
)

// An audit entry's CI facts (a JIT token's pipeline: repository, run id,
// workflow…, some 500 bytes) are the same for every request the token
// makes. They are stored once, in audit_ci, under the SHA-256 of their
// canonical JSON, and a row refers to them by ci_id; its own ci column is
// then '{}'. A row without ci_id (no CI facts, or a row written before
// migration 0103) holds its CI inline. The hash chain covers the facts, not
// where they are stored: readers select AuditSelectCols, which puts the
// referenced facts back in the ci column.

// AuditInsertCols are the columns an insert of an audit entry writes:
// AuditCols and ci_id.
const AuditInsertCols = AuditCols + `, ci_id`

// AuditSelectCols is AuditCols as a query on audit_entries selects it: the
// ci column holds the referenced facts when the row's own ci is '{}', as
// written. Anything else reads as stored, so that verify sees every edit:
// a dangling reference reads as '{}', a row's ci edited after it was
// written reads as the edit.
const AuditSelectCols = `seq, time, request_id, token_id, token_name, action, resource, outcome, reason, status, source_ip, user_agent,
	COALESCE((SELECT audit_ci.ci FROM audit_ci WHERE audit_ci.id = audit_entries.ci_id AND audit_entries.ci = '{}'), audit_entries.ci),
	meta, prev_hash, hash`

// CIDigest is the key of a CI object in audit_ci: the SHA-256 of its
// canonical JSON (JSONObject).
type CIDigest [sha256.Size]byte

// CIRefs remembers, for one store, which CI objects audit_ci holds: by
// digest, and by the identity of the map an entry carries (a cached
// token's, shared by every entry of its requests), so that a known map is
// neither encoded nor hashed again. It only learns what a committed
// transaction stored, so an id it gives exists. The zero value is ready.
//
// Keying by identity relies on the audit broker's contract that an entry's
// maps are not changed once recorded; the remembered map is kept, so its
// address is not reused by another map while it is remembered.
type CIRefs struct {
	mu       sync.Mutex
	byMap    map[uintptr]ciKnown
	byDigest map[CIDigest]int64
}

// ciRefsMax bounds each of CIRefs' maps: past it, a map starts over.
const ciRefsMax = 4096

type ciKnown struct {
	m  map[string]string // kept alive: its address is the key
	id int64
}

// CIBatch is the CI references of one batch of entries, in their order.
type CIBatch struct {
	// IDs holds each entry's audit_ci id; 0 for an entry whose CI is
	// inline (none) or is in New.
	IDs []int64
	// NewOf holds, for each entry, the index in New of its CI object, or
	// -1.
	NewOf []int
	// New are the CI objects audit_ci may not hold yet: the transaction
	// inserts each if missing, finds its id and calls Resolve.
	New []NewCI

	learn []ciKnown // maps found by content, to remember by identity on commit
}

// NewCI is one CI object a batch must find or insert.
type NewCI struct {
	Digest  CIDigest
	JSON    string
	Entries []int // indexes in the batch
	maps    []map[string]string
	id      int64
}

// Plan returns es's CI references: known ones resolved, others in New.
func (r *CIRefs) Plan(es []*tokenward.AuditEntry) *CIBatch {
	b := &CIBatch{IDs: make([]int64, len(es)), NewOf: make([]int, len(es))}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range es {
		b.NewOf[i] = -1
		if len(e.CI) == 0 {
			continue
		}
		p := reflect.ValueOf(e.CI).Pointer()
		if k, ok := r.byMap[p]; ok {
			b.IDs[i] = k.id
			continue
		}
		if j := b.newByMap(e.CI); j >= 0 {
			b.New[j].Entries = append(b.New[j].Entries, i)
			b.NewOf[i] = j
			continue
		}
		js := JSONObject(e.CI)
		d := CIDigest(sha256.Sum256([]byte(js)))
		if id, ok := r.byDigest[d]; ok {
			b.IDs[i] = id
			b.learn = append(b.learn, ciKnown{e.CI, id})
			continue
		}
		if j := b.newByDigest(d); j >= 0 {
			b.New[j].Entries = append(b.New[j].Entries, i)
			b.New[j].maps = append(b.New[j].maps, e.CI)
			b.NewOf[i] = j
			continue
		}
		b.NewOf[i] = len(b.New)
		b.New = append(b.New, NewCI{Digest: d, JSON: js, Entries: []int{i}, maps: []map[string]string{e.CI}})
	}
	return b
}

// newByMap is the index in New of the object m was found as, or -1.
func (b *CIBatch) newByMap(m map[string]string) int {
	p := reflect.ValueOf(m).Pointer()
	for j := range b.New {
		for _, m2 := range b.New[j].maps {
			if reflect.ValueOf(m2).Pointer() == p {
				return j
			}
		}
	}
	return -1
}

func (b *CIBatch) newByDigest(d CIDigest) int {
	for j := range b.New {
		if b.New[j].Digest == d {
			return j
		}
	}
	return -1
}

// Resolve records that New[j] has id id in audit_ci.
func (b *CIBatch) Resolve(j int, id int64) {
	b.New[j].id = id
	for _, i := range b.New[j].Entries {
		b.IDs[i] = id
	}
}

// Committed remembers what b found, once its transaction committed.
func (r *CIRefs) Committed(b *CIBatch) {
	if len(b.New) == 0 && len(b.learn) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byMap == nil || len(r.byMap) >= ciRefsMax {
		r.byMap = map[uintptr]ciKnown{}
	}
	if r.byDigest == nil || len(r.byDigest) >= ciRefsMax {
		r.byDigest = map[CIDigest]int64{}
	}
	for _, k := range b.learn {
		r.byMap[reflect.ValueOf(k.m).Pointer()] = k
	}
	for _, n := range b.New {
		if n.id == 0 {
			continue
		}
		r.byDigest[n.Digest] = n.id
		for _, m := range n.maps {
			r.byMap[reflect.ValueOf(m).Pointer()] = ciKnown{m, n.id}
		}
	}
}

// InlineCI is the value of es[i]'s inline ci column: '{}' when its facts
// are referenced, else its facts.
func (b *CIBatch) InlineCI(es []*tokenward.AuditEntry, i int) string {
	if b.IDs[i] > 0 || b.NewOf[i] >= 0 {
		return "{}"
	}
	return JSONObject(es[i].CI)
}

// Retention (audit.PruneStore), the same SQL in both stores.
const (
	// AuditPruneAnchorSQL is the newest checkpoint whose entry is stored
	// and older than the argument (Unix nanoseconds); NULL when none is.
	AuditPruneAnchorSQL = `SELECT MAX(c.seq) FROM audit_checkpoints c JOIN audit_entries e ON e.seq = c.seq WHERE e.time < ?`
	// AuditAtSQL reads the entry with the argument's seq, and
	// AuditCheckpointsAtSQL the checkpoints at that seq: the anchor the
	// prune checks before it deletes anything.
	AuditAtSQL            = `SELECT ` + AuditSelectCols + ` FROM audit_entries WHERE seq = ?`
	AuditCheckpointsAtSQL = `SELECT ` + CheckpointCols + ` FROM audit_checkpoints WHERE seq = ? ORDER BY id`
	// PruneAuditSQL deletes up to the second argument's count of the
	// oldest entries with a seq up to the first.
	PruneAuditSQL = `DELETE FROM audit_entries WHERE id IN (SELECT id FROM audit_entries WHERE seq <= ? ORDER BY seq LIMIT ?)`
	// PruneAuditCheckpointsSQL deletes the checkpoints before the anchor.
	PruneAuditCheckpointsSQL = `DELETE FROM audit_checkpoints WHERE seq < ?`
)
