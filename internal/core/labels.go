package core

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenward/tokenward"
)

// Version labels: CURRENT is a secret's version; PENDING and PREVIOUS are
// kept by a tokenward.LabelStore (rotation stages values through them).

// ParseVersionSelector reads a version query: "" or "current" (0, CURRENT),
// "previous", "pending", or a number of 1 or more.
func ParseVersionSelector(s string) (int, string, error) {
	switch strings.ToLower(s) {
	case "", "current":
		return 0, "", nil
	case "previous":
		return 0, tokenward.LabelPrevious, nil
	case "pending":
		return 0, tokenward.LabelPending, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || fmt.Sprint(n) != s {
		return 0, "", tokenward.Errorf(tokenward.EINVALID, "version must be a whole number of 1 or more, or current, previous or pending")
	}
	return n, "", nil
}

// GetSecretLabel returns a secret's metadata and the value of the version
// carrying label (CURRENT, PENDING or PREVIOUS), and that version's number.
func (c *Core) GetSecretLabel(ctx context.Context, tok *tokenward.Token, project, env, name, label string) (*tokenward.Secret, []byte, int, error) {
	if err := validPath(project, env, name); err != nil {
		return nil, nil, 0, err
	}
	if err := require(tok, tokenward.ActionRead, project, env, name); err != nil {
		return nil, nil, 0, err
	}
	ls, ok := c.Store.(tokenward.LabelStore)
	if !ok {
		return nil, nil, 0, tokenward.Errorf(tokenward.EUNAVAILABLE, "this store keeps no version labels")
	}
	l, err := ls.SecretLabels(ctx, project, env, name)
	if err != nil {
		return nil, nil, 0, err
	}
	n := labelVersion(l, label)
	if n == 0 {
		return nil, nil, 0, tokenward.Errorf(tokenward.ENOTFOUND, "%s/%s/%s has no %s version", project, env, name, label)
	}
	meta, value, err := c.GetSecret(ctx, tok, project, env, name, n)
	return meta, value, n, err
}

// labelVersion is the version carrying label, 0 for none.
func labelVersion(l *tokenward.VersionLabels, label string) int {
	switch label {
	case tokenward.LabelCurrent:
		return l.Current
	case tokenward.LabelPending:
		return l.Pending
	case tokenward.LabelPrevious:
		return l.Previous
	}
	return 0
}

// nextVersion is the number a plain write of a secret at version prev
// takes: prev+1, or above every version when a rotation's took prev+1.
func (c *Core) nextVersion(ctx context.Context, project, env, name string, prev int) (int, error) {
	ls, ok := c.Store.(tokenward.LabelStore)
	if !ok || prev == 0 {
		return prev + 1, nil
	}
	l, err := ls.SecretLabels(ctx, project, env, name)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return prev + 1, nil
	}
	if err != nil {
		return 0, err
	}
	return max(prev, l.Latest) + 1, nil
}
