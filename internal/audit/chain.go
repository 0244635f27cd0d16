package audit

import (
	"fmt"
	"sync"
	"time"

	"github.com/tokenward/tokenward"
)

// Chain assigns Seq, PrevHash and Hash to new entries. It holds only the
// last entry's position, so a server resumes after a restart by handing it
// the last stored entry. It is safe for concurrent use.
type Chain struct {
	mu   sync.Mutex
	seq  int64
	hash string
	// stale: a write failed, so the store may hold more than the chain
	// knows (a commit whose acknowledgement was lost, another server).
	stale bool
	frame []byte      // appendFramed's buffer, reused under mu
	ci    ciEncodings // appendFramed's, under mu
}

// NewChain returns a chain that continues after last; nil starts a new
// chain at Seq 1 from GenesisHash. last's own hash is checked so a corrupt
// tail is not silently built upon.
func NewChain(last *tokenward.AuditEntry) (*Chain, error) {
	c := &Chain{}
	if err := c.Reset(last); err != nil {
		return nil, err
	}
	return c, nil
}

// Reset makes the chain continue after last (nil: an empty chain).
func (c *Chain) Reset(last *tokenward.AuditEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resetLocked(last)
}

func (c *Chain) resetLocked(last *tokenward.AuditEntry) error {
	seq, hash := int64(0), GenesisHash
	if last != nil {
		if last.Seq < 1 {
			return tokenward.Errorf(tokenward.EINVALID, "audit: last entry has seq %d; want >= 1", last.Seq)
		}
		if got := HashEntry(last); got != last.Hash {
			return tokenward.Errorf(tokenward.EINVALID, "audit: last entry (seq %d) does not match its hash", last.Seq)
		}
		seq, hash = last.Seq, last.Hash
	}
	c.seq, c.hash, c.stale = seq, hash, false
	return nil
}

// Last returns the Seq and Hash of the last entry appended (0 and
// GenesisHash for an empty chain).
func (c *Chain) Last() (int64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq, c.hash
}

// Append links e to the chain and calls write with it while holding the
// chain's lock, so entries reach write in Seq order. The chain advances only
// if write returns nil: a failed write leaves the next entry the same Seq.
// Append truncates e.Time to microseconds (the precision of PostgreSQL and
// of most stores) before hashing, so a stored entry hashes the same when
// read back.
func (c *Chain) Append(e *tokenward.AuditEntry, write func(*tokenward.AuditEntry) error) error {
	return c.append(e, nil, write)
}

// append is Append that, when reload is not nil, re-reads the chain's end
// with it (under the lock) after any failed write, before linking e.
func (c *Chain) append(e *tokenward.AuditEntry, reload func() (*tokenward.AuditEntry, error), write func(*tokenward.AuditEntry) error) error {
	return c.appendBatch([]*tokenward.AuditEntry{e}, reload, func(es []*tokenward.AuditEntry) error { return write(es[0]) })
}

// appendBatch is append for consecutive entries, written by one call.
func (c *Chain) appendBatch(es []*tokenward.AuditEntry, reload func() (*tokenward.AuditEntry, error), write func([]*tokenward.AuditEntry) error) error {
	if err := truncateTimes(es); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale && reload != nil {
		last, err := reload()
		if err != nil {
			return fmt.Errorf("audit: reload last entry: %w", err)
		}
		if err := c.resetLocked(last); err != nil {
			return err
		}
	}
	Link(c.seq, c.hash, es)
	seq, hash := es[len(es)-1].Seq, es[len(es)-1].Hash
	if err := write(es); err != nil {
		c.stale = reload != nil
		return fmt.Errorf("audit: write %s: %w", entryRange(es[0].Seq, seq), err)
	}
	c.seq, c.hash = seq, hash
	return nil
}

// truncateTimes checks every entry has a time and truncates it to
// microseconds in UTC, as Append documents, before anything is hashed.
func truncateTimes(es []*tokenward.AuditEntry) error {
	for _, e := range es {
		if e.Time.IsZero() {
			return tokenward.Errorf(tokenward.EINVALID, "audit: entry has no time")
		}
		e.Time = e.Time.Round(0).UTC().Truncate(time.Microsecond)
	}
	return nil
}

// entryRange names entries first..last in an error.
func entryRange(first, last int64) string {
	if first == last {
		return fmt.Sprintf("entry %d", first)
	}
	return fmt.Sprintf("entries %d..%d", first, last)
}
