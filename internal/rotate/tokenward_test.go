package rotate_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	. "github.com/tokenward/tokenward/internal/rotate"
)

// tokenService is a small real token service: real tokenward tokens, kept
// only as hashes, with grants copied on mint.
type tokenService struct {
	mu      sync.Mutex
	grants  map[[32]byte][]string
	revoked map[[32]byte]bool
}

func (s *tokenService) issue(grants ...string) string {
	tok, err := tokenward.NewTokenSecret(tokenward.TokenService)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[tokenward.HashToken(tok)] = grants
	return tok
}

func (s *tokenService) find(tok string) ([32]byte, bool) {
	h := tokenward.HashToken(tok)
	for k := range s.grants {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			return k, true
		}
	}
	return h, false
}

func (s *tokenService) Mint(_ context.Context, like string) (string, error) {
	s.mu.Lock()
	h, ok := s.find(like)
	g := s.grants[h]
	s.mu.Unlock()
	if !ok {
		return "", errors.New("unknown token")
	}
	return s.issue(g...), nil
}

func (s *tokenService) Revoke(_ context.Context, tok string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, _ := s.find(tok)
	s.revoked[h] = true
	return nil
}

func (s *tokenService) Check(_ context.Context, tok string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.find(tok)
	if !ok || s.revoked[h] {
		return errors.New("token is not valid")
	}
	return nil
}

func TestTokenwardRotatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	ts := &tokenService{grants: map[[32]byte][]string{}, revoked: map[[32]byte]bool{}}
	old := ts.issue("read:payments/prod/*")
	e := newEnv(t, map[string]Rotator{"tokenward": &Tokenward{Tokens: ts}})
	const path = "ci/prod/TOKENWARD_TOKEN"
	e.mustPut(t, path, old)
	e.mustPolicy(t, &Policy{Path: path, Every: 7 * 24 * time.Hour, Grace: 24 * time.Hour, Rotator: "tokenward"})

	if _, err := e.m.RotateNow(ctx, path, "manual"); err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	cur := e.label(t, path, LabelCurrent)
	if kind, err := tokenward.ParseToken(cur); err != nil || kind != tokenward.TokenService {
		t.Fatalf("new CURRENT: got kind %q, %v; want a service token", kind, err)
	}
	h, _ := ts.find(cur)
	if got := ts.grants[h]; len(got) != 1 || got[0] != "read:payments/prod/*" {
		t.Fatalf("new token grants: got %v; want the old token's", got)
	}
	steps := []struct {
		advance  time.Duration
		oldValid bool
	}{
		{23 * time.Hour, true},
		{time.Hour, false},
	}
	for _, s := range steps {
		e.clock.Add(s.advance)
		if err := e.m.Resume(ctx); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if got := ts.Check(ctx, old) == nil; got != s.oldValid {
			t.Fatalf("old token valid after +%s: got %v; want %v", s.advance, got, s.oldValid)
		}
		if err := ts.Check(ctx, cur); err != nil {
			t.Fatalf("new token: %v", err)
		}
	}
	if s := e.logs.String(); strings.Contains(s, old) || strings.Contains(s, cur) {
		t.Fatalf("a token appears in the log")
	}
}

// A secret with no token to mint like cannot be rotated by retrying: the
// rotation ends at its first attempt.
func TestTokenwardRotatorWithoutCurrentFailsPermanently(t *testing.T) {
	ctx := context.Background()
	ts := &tokenService{grants: map[[32]byte][]string{}, revoked: map[[32]byte]bool{}}
	e := newEnv(t, map[string]Rotator{"tokenward": &Tokenward{Tokens: ts}})
	var alerts int
	e.m.Alert = func(context.Context, *Rotation) { alerts++ }
	const path = "ci/prod/TOKENWARD_TOKEN"
	e.mustPolicy(t, &Policy{Path: path, Every: 7 * 24 * time.Hour, Rotator: "tokenward"})
	r, err := e.m.RotateNow(ctx, path, "manual")
	if !IsPermanent(err) || tokenward.ErrorCode(err) != tokenward.EINVALID {
		t.Fatalf("RotateNow: got %v (code %s); want a permanent %s", err, tokenward.ErrorCode(err), tokenward.EINVALID)
	}
	if r.Step != StepFailed || r.Attempt != 1 || alerts != 1 || !strings.Contains(r.Error, "no CURRENT token") {
		t.Fatalf("got step %s, attempt %d, %d alerts, error %q; want failed at once, one alert", r.Step, r.Attempt, alerts, r.Error)
	}
}
