package inject

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Fallback wraps a fetch of secrets with the --fallback snapshot: every
// successful fetch rewrites the snapshot, a fetch the server refuses deletes
// it, and a fetch that cannot reach the server is answered from it if it is
// recent enough and for the same --env list.
type Fallback struct {
	Path   string        // the snapshot file
	Token  string        // the token the snapshot key is derived from
	Envs   []string      // the --env list, in order
	MaxAge time.Duration // --fallback-max-age

	// Unreachable reports whether a fetch error means the server could not
	// be reached (connection refused, timeout, 5xx): only then is the
	// snapshot used.
	Unreachable func(error) bool
	// Denied reports whether the server refused the token (401/403): the
	// snapshot is then deleted, so it never serves what the token lost.
	Denied func(error) bool

	Now  func() time.Time // default time.Now
	Warn func(msg string) // default: discard
}

// Fetch calls fetch and applies the fallback rules.
func (f *Fallback) Fetch(ctx context.Context, fetch func(context.Context) (map[string]string, error)) (map[string]string, error) {
	now, warn := f.Now, f.Warn
	if now == nil {
		now = time.Now
	}
	if warn == nil {
		warn = func(string) {}
	}
	values, err := fetch(ctx)
	if err == nil {
		if serr := SaveSnapshot(f.Path, f.Token, f.Envs, values, now()); serr != nil {
			warn(fmt.Sprintf("could not update the fallback snapshot: %v", serr))
		}
		return values, nil
	}
	if f.Denied != nil && f.Denied(err) {
		if rerr := os.Remove(f.Path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			warn(fmt.Sprintf("could not delete the fallback snapshot: %v", rerr))
		}
		return nil, err
	}
	if f.Unreachable == nil || !f.Unreachable(err) {
		return nil, err
	}
	snap, lerr := LoadSnapshot(f.Path, f.Token, f.MaxAge, now())
	if lerr != nil {
		return nil, fmt.Errorf("%w; fallback not used: %w", err, lerr)
	}
	if !slices.Equal(snap.Envs, f.Envs) {
		return nil, fmt.Errorf("%w; fallback not used: the snapshot is of other environments", err)
	}
	warn(fmt.Sprintf("server unreachable: using the fallback snapshot fetched %s ago (%s)",
		now().Sub(snap.FetchedAt).Round(time.Second), snap.FetchedAt.Format(time.RFC3339)))
	return snap.Values, nil
}
