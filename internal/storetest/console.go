package storetest

import (
	"crypto/sha256"
	"reflect"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// ConsoleStore is what a backend provides for the web console's sessions.
type ConsoleStore interface {
	tokenward.ConsoleSessionStore
	Close() error
}

// RunConsoleSessions runs the console-session part of the suite.
func RunConsoleSessions(t *testing.T, newStore func(t *testing.T) ConsoleStore) {
	runEach(t, newStore, []named[ConsoleStore]{
		{"CreateReadDelete", testConsoleSessions},
		{"Touch", testConsoleTouch},
		{"EndByTokenAndSweep", testConsoleSweep},
	}...)
}

func consoleSession(tokenID string, created time.Time) *tokenward.ConsoleSession {
	return &tokenward.ConsoleSession{
		TokenID: tokenID, SealedToken: []byte("sealed-" + tokenID),
		CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(12 * time.Hour),
	}
}

func testConsoleSessions(t *testing.T, s ConsoleStore) {
	h := sha256.Sum256([]byte("session one"))
	_, err := s.ConsoleSession(ctx, h)
	wantCode(t, err, tokenward.ENOTFOUND)
	want := consoleSession("tok_a", base)
	must(t, s.CreateConsoleSession(ctx, h, want))
	wantCode(t, s.CreateConsoleSession(ctx, h, consoleSession("tok_b", base)), tokenward.ECONFLICT)
	got, err := s.ConsoleSession(ctx, h)
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	other := sha256.Sum256([]byte("session two"))
	_, err = s.ConsoleSession(ctx, other)
	wantCode(t, err, tokenward.ENOTFOUND)
	must(t, s.DeleteConsoleSession(ctx, h))
	must(t, s.DeleteConsoleSession(ctx, h)) // signing out twice is no error
	_, err = s.ConsoleSession(ctx, h)
	wantCode(t, err, tokenward.ENOTFOUND)
}

func testConsoleTouch(t *testing.T, s ConsoleStore) {
	h := sha256.Sum256([]byte("touched"))
	wantCode(t, s.TouchConsoleSession(ctx, h, base), tokenward.ENOTFOUND)
	must(t, s.CreateConsoleSession(ctx, h, consoleSession("tok_a", base)))
	for _, tc := range []struct {
		at, want time.Time
	}{
		{base.Add(time.Minute), base.Add(time.Minute)},
		{base.Add(30 * time.Second), base.Add(time.Minute)}, // never backwards
		{base.Add(time.Hour), base.Add(time.Hour)},
	} {
		must(t, s.TouchConsoleSession(ctx, h, tc.at))
		got, err := s.ConsoleSession(ctx, h)
		must(t, err)
		if !got.LastSeenAt.Equal(tc.want) {
			t.Errorf("touch at %v: got last seen %v; want %v", tc.at, got.LastSeenAt, tc.want)
		}
		if !got.ExpiresAt.Equal(base.Add(12 * time.Hour)) {
			t.Errorf("touch moved the absolute expiry to %v", got.ExpiresAt)
		}
	}
}

func testConsoleSweep(t *testing.T, s ConsoleStore) {
	sessions := map[string]*tokenward.ConsoleSession{
		"a1":   consoleSession("tok_a", base),
		"a2":   consoleSession("tok_a", base),
		"b":    consoleSession("tok_b", base),
		"idle": consoleSession("tok_c", base.Add(-time.Hour)),
		"old":  consoleSession("tok_c", base),
	}
	sessions["old"].ExpiresAt = base.Add(time.Minute)
	sessions["b"].LastSeenAt = base.Add(10 * time.Minute)
	for id, sess := range sessions {
		must(t, s.CreateConsoleSession(ctx, sha256.Sum256([]byte(id)), sess))
	}
	n, err := s.DeleteTokenConsoleSessions(ctx, "tok_a")
	must(t, err)
	if n != 2 {
		t.Errorf("ending tok_a's sessions: got %d removed; want 2", n)
	}
	// At base+1m, idle since base-30m: "old" has expired, "idle" is idle.
	n, err = s.SweepConsoleSessions(ctx, base.Add(time.Minute), base.Add(-30*time.Minute))
	must(t, err)
	if n != 2 {
		t.Errorf("sweep: got %d removed; want 2", n)
	}
	for id, want := range map[string]bool{"a1": false, "a2": false, "b": true, "idle": false, "old": false} {
		_, err := s.ConsoleSession(ctx, sha256.Sum256([]byte(id)))
		if got := err == nil; got != want {
			t.Errorf("session %s: got present=%v (%v); want %v", id, got, err, want)
		}
	}
}
