package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
)

// VersionDeletingStore is a Store that deletes and destroys versions.
type VersionDeletingStore interface {
	tokenward.Store
	tokenward.VersionDeleteStore
}

// RunVersionDeletes runs the version deletion conformance test: delete,
// undelete and destroy single versions, a missing version changing
// nothing, and a destroyed version's ciphertext gone from every read.
func RunVersionDeletes(t *testing.T, newStore func(t *testing.T) VersionDeletingStore) {
	s := newStore(t)
	t.Cleanup(func() { s.Close() })
	newProject(t, s, "p", "prod")
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	for n := 1; n <= 3; n++ {
		must(t, s.PutSecret(ctx, meta, n-1, version(n, "c"+string(rune('0'+n)))))
	}
	t1, t2 := base.Add(time.Hour), base.Add(2*time.Hour)
	steps := []struct {
		name string
		do   func() error
		code string
		want map[int]tokenward.VersionState
	}{
		{"none at first", func() error { return nil }, "", map[int]tokenward.VersionState{}},
		{"delete 1 and 3", func() error { return s.DeleteVersions(ctx, "p", "prod", "KEY", []int{1, 3}, t1) }, "",
			map[int]tokenward.VersionState{1: {DeletedAt: t1}, 3: {DeletedAt: t1}}},
		{"delete again keeps the first time", func() error { return s.DeleteVersions(ctx, "p", "prod", "KEY", []int{3}, t2) }, "",
			map[int]tokenward.VersionState{1: {DeletedAt: t1}, 3: {DeletedAt: t1}}},
		{"a missing version changes nothing", func() error { return s.DeleteVersions(ctx, "p", "prod", "KEY", []int{2, 9}, t2) }, tokenward.ENOTFOUND,
			map[int]tokenward.VersionState{1: {DeletedAt: t1}, 3: {DeletedAt: t1}}},
		{"no such secret", func() error { return s.UndeleteVersions(ctx, "p", "prod", "NOPE", []int{1}) }, tokenward.ENOTFOUND,
			map[int]tokenward.VersionState{1: {DeletedAt: t1}, 3: {DeletedAt: t1}}},
		{"undelete 3", func() error { return s.UndeleteVersions(ctx, "p", "prod", "KEY", []int{3}) }, "",
			map[int]tokenward.VersionState{1: {DeletedAt: t1}}},
		{"destroy 1 and 2", func() error { return s.DestroyVersions(ctx, "p", "prod", "KEY", []int{1, 2}, t2) }, "",
			map[int]tokenward.VersionState{1: {DeletedAt: t1, DestroyedAt: t2}, 2: {DestroyedAt: t2}}},
		{"undelete does not bring back a destroyed version", func() error { return s.UndeleteVersions(ctx, "p", "prod", "KEY", []int{2}) }, "",
			map[int]tokenward.VersionState{1: {DeletedAt: t1, DestroyedAt: t2}, 2: {DestroyedAt: t2}}},
	}
	for _, st := range steps {
		err := st.do()
		if got := tokenward.ErrorCode(err); got != st.code {
			t.Fatalf("%s: got error %v; want code %q", st.name, err, st.code)
		}
		got, err := s.VersionStates(ctx, "p", "prod", "KEY")
		must(t, err)
		if !maps.EqualFunc(got, st.want, func(a, b tokenward.VersionState) bool {
			return a.DeletedAt.Equal(b.DeletedAt) && a.DestroyedAt.Equal(b.DestroyedAt)
		}) {
			t.Fatalf("%s: got states %v; want %v", st.name, got, st.want)
		}
	}
	for n, want := range map[int]string{1: "", 2: "", 3: "c3"} {
		v, err := s.SecretVersion(ctx, "p", "prod", "KEY", n)
		must(t, err)
		if string(v.Ciphertext) != want {
			t.Errorf("version %d: got ciphertext %q; want %q", n, v.Ciphertext, want)
		}
	}
	if _, v, err := s.CurrentSecret(ctx, "p", "prod", "KEY"); err != nil || string(v.Ciphertext) != "c3" {
		t.Errorf("current: got %v %v; want version 3 c3", v, err)
	}
	vs, err := s.SecretVersions(ctx, "p", "prod", "KEY")
	must(t, err)
	if len(vs) != 3 {
		t.Errorf("versions: got %d; want 3 (a destroyed version keeps its row)", len(vs))
	}
}
