package core

import (
	"context"
	"encoding/hex"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/scan"
)

// ScanKeySize is the size of the per-scan fingerprint key.
const ScanKeySize = 32

// ManagedFingerprint is one managed value's keyed fingerprint: HMAC-SHA256
// under the scanner's key (hex) and the secret it belongs to.
type ManagedFingerprint struct {
	HMAC string `json:"hmac"`
	Path string `json:"path"`
}

// ManagedFingerprints returns scan.ManagedFingerprint(key, value) of the
// CURRENT and PREVIOUS value of every secret tok may read, so a scanner
// can name an exact leak of a managed value without ever receiving it. The
// key is the scanner's, fresh per scan; it is not kept, and the answer is
// useless under any other key. A token that may read nothing gets an empty
// set, not an error: the set says nothing it could not read. PREVIOUS is
// the version a rotation labelled so (see previousVersion).
func (c *Core) ManagedFingerprints(ctx context.Context, tok *tokenward.Token, key []byte) ([]ManagedFingerprint, error) {
	if len(key) != ScanKeySize {
		return nil, tokenward.Errorf(tokenward.EINVALID, "key must be %d bytes; got %d", ScanKeySize, len(key))
	}
	labels, _ := c.Store.(tokenward.LabelStore)
	out := []ManagedFingerprint{}
	add := func(path string, value []byte) {
		fp := scan.ManagedFingerprint(key, value)
		out = append(out, ManagedFingerprint{HMAC: hex.EncodeToString(fp[:]), Path: path})
	}
	err := c.eachReadableValue(ctx, tok, func(s *tokenward.Secret, cur int, value []byte) error {
		add(s.Path(), value)
		prev, err := c.previousVersion(ctx, labels, s.Project, s.Env, s.Name, cur)
		if err != nil || prev == 0 || prev == cur {
			return err
		}
		sv, err := c.Store.SecretVersion(ctx, s.Project, s.Env, s.Name, prev)
		if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		pv, err := c.openValue(ctx, s.Project, s.Env, s.Name, prev, sv.Ciphertext)
		if err != nil {
			return err
		}
		add(s.Path(), pv)
		clear(pv)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// previousVersion is the version labelled PREVIOUS: the value a rotation
// replaced, still valid through its grace. A store without labels has no
// such label; there it is the version just below CURRENT. A value replaced
// by a plain write, or one whose grace ended, is not a live credential of
// ours and is not fingerprinted (remediation would rotate for nothing).
func (c *Core) previousVersion(ctx context.Context, labels tokenward.LabelStore, project, env, name string, cur int) (int, error) {
	if labels == nil {
		return cur - 1, nil
	}
	l, err := labels.SecretLabels(ctx, project, env, name)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return l.Previous, nil
}
