package readcache_test

import (
	"context"
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/readcache"
)

// clock is a ChangeClock the test moves by hand; the real ones (SQLite's
// WAL index, PostgreSQL's listener) are tested with their stores.
type clock struct {
	gen uint64
	ok  bool
}

func (c *clock) Generation() (uint64, bool) { return c.gen, c.ok }

// TestCacheTrustsOnlyAnUnmovedClock: a read is answered from the cache
// while the generation it was loaded at holds, loaded again when the
// generation moves, never cached while the clock cannot tell, and never
// cached when it fails; callers get copies.
func TestCacheTrustsOnlyAnUnmovedClock(t *testing.T) {
	ctx := context.Background()
	clk := &clock{gen: 1, ok: true}
	loads := 0
	var fail error
	load := func(_ context.Context, id string) (*tokenward.Token, error) {
		loads++
		if fail != nil {
			return nil, fail
		}
		return &tokenward.Token{ID: id, Name: "n", Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/e/*")}}, nil
	}
	c := readcache.New(clk, readcache.Loaders{Token: load})
	steps := []struct {
		name      string
		before    func()
		wantLoads int
		wantErr   bool
	}{
		{"first read loads", func() {}, 1, false},
		{"second read is cached", func() {}, 1, false},
		{"the clock moves", func() { clk.gen++ }, 2, false},
		{"cached again", func() {}, 2, false},
		{"the clock cannot tell", func() { clk.ok = false }, 3, false},
		{"still cannot tell", func() {}, 4, false},
		{"back, same generation: what was read while down was not kept", func() { clk.ok = true }, 4, false},
		{"a failed load", func() { clk.gen++; fail = tokenward.Errorf(tokenward.ENOTFOUND, "gone") }, 5, true},
		{"failures are not cached", func() {}, 6, true},
	}
	for _, s := range steps {
		s.before()
		got, err := c.Token(ctx, "tok_1")
		if (err != nil) != s.wantErr || loads != s.wantLoads {
			t.Fatalf("%s: got %d loads, error %v; want %d loads, error %v", s.name, loads, err, s.wantLoads, s.wantErr)
		}
		if err == nil {
			continue
		}
		if got != nil {
			t.Fatalf("%s: got %v; want no token with the error", s.name, got)
		}
	}
	// A caller's change to its copy is not the next caller's answer.
	fail = nil
	clk.gen++
	mine, _ := c.Token(ctx, "tok_1")
	mine.Grants[0] = tokenward.MustParseGrant("admin:*/*/*")
	mine.Name = "changed"
	got, _ := c.Token(ctx, "tok_1")
	if loads != 7 {
		t.Fatalf("got %d loads; want the second read cached", loads)
	}
	if got.Name != "n" || got.Grants[0].String() != "read:p/e/*" {
		t.Errorf("after a caller changed its copy: got %s %v; want the stored record", got.Name, got.Grants)
	}
}

// TestSharedReadsShareOneEntry: the shared reads are served from the same
// entries as the copying ones, in any order (one load for both), return
// the cache's own records, and leave the copying reads' answers copies.
func TestSharedReadsShareOneEntry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{gen: 1, ok: true}
	envLoads, listLoads, curLoads := 0, 0, 0
	c := readcache.New(clk, readcache.Loaders{
		CurrentSecret: func(_ context.Context, project, env, name string) (*tokenward.Secret, *tokenward.SecretVersion, error) {
			curLoads++
			return &tokenward.Secret{Project: project, Env: env, Name: name}, &tokenward.SecretVersion{Version: 1}, nil
		},
		EnvSecrets: func(_ context.Context, project, env string) ([]*tokenward.Secret, []*tokenward.SecretVersion, error) {
			envLoads++
			return []*tokenward.Secret{{Project: project, Env: env, Name: "A", Tags: []string{"t"}}}, []*tokenward.SecretVersion{{Version: 1}}, nil
		},
		Secrets: func(_ context.Context, project, env string) ([]*tokenward.Secret, error) {
			listLoads++
			return []*tokenward.Secret{{Project: project, Env: env, Name: "A"}}, nil
		},
	})
	for _, sharedFirst := range []bool{true, false} {
		clk.gen++
		var copied, shared1, shared2 []*tokenward.Secret
		if sharedFirst {
			shared1, _, _ = c.SharedEnvSecrets(ctx, "p", "e")
			copied, _, _ = c.EnvSecrets(ctx, "p", "e")
		} else {
			copied, _, _ = c.EnvSecrets(ctx, "p", "e")
			shared1, _, _ = c.SharedEnvSecrets(ctx, "p", "e")
		}
		shared2, v, err := c.SharedEnvSecrets(ctx, "p", "e")
		if err != nil || len(shared2) != 1 || len(v) != 1 {
			t.Fatalf("shared first %v: got %v %v %v", sharedFirst, shared2, v, err)
		}
		if shared1[0] != shared2[0] {
			t.Errorf("shared first %v: two shared reads got different records; want the cache's own", sharedFirst)
		}
		if copied[0] == shared1[0] {
			t.Errorf("shared first %v: EnvSecrets answered the cache's own record; want a copy", sharedFirst)
		}
		s1, _ := c.SharedSecrets(ctx, "p", "e")
		s2, _ := c.SharedSecrets(ctx, "p", "e")
		if s1[0] != s2[0] {
			t.Errorf("shared first %v: SharedSecrets got different records", sharedFirst)
		}
		if l, _ := c.Secrets(ctx, "p", "e"); l[0] == s1[0] {
			t.Errorf("shared first %v: Secrets answered the cache's own record; want a copy", sharedFirst)
		}
		c1, v1, _ := c.SharedCurrentSecret(ctx, "p", "e", "A")
		c2, v2, _ := c.SharedCurrentSecret(ctx, "p", "e", "A")
		if c1 != c2 || v1 != v2 {
			t.Errorf("shared first %v: SharedCurrentSecret got different records", sharedFirst)
		}
		if cs, cv, _ := c.CurrentSecret(ctx, "p", "e", "A"); cs == c1 || cv == v1 {
			t.Errorf("shared first %v: CurrentSecret answered the cache's own record; want a copy", sharedFirst)
		}
	}
	if envLoads != 2 || listLoads != 2 || curLoads != 2 {
		t.Errorf("got %d environment, %d list and %d current-secret loads; want 2 each (one per generation)", envLoads, listLoads, curLoads)
	}
}
