package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/monitor"
)

// MonitorStore is a store that also keeps anomalies, the monitor's state,
// stale notices and archives of retired environments.
type MonitorStore interface {
	tokenward.Store
	core.MonitorStore
}

// RunMonitor runs the monitoring part of the suite.
func RunMonitor(t *testing.T, newStore func(t *testing.T) MonitorStore) {
	runEach(t, newStore, []named[MonitorStore]{
		{"Anomalies", testAnomalies},
		{"MonitorState", testMonitorState},
		{"StaleNotices", testStaleNotices},
		{"RevokeStaleToken", testRevokeStaleToken},
		{"ExpiryAlerts", testExpiryAlerts},
		{"ReplaceTokenGrants", testReplaceTokenGrants},
		{"ArchiveRestorePurge", testArchiveRestorePurge},
		{"PruneTokens", testPruneTokens},
	}...)
}

// testPruneTokens: only tokens revoked or expired before the cut, and
// named by no live lease, go (oldest first, as many as the limit), with
// their stale notices and console sessions; the active count follows.
func testPruneTokens(t *testing.T, s MonitorStore) {
	cut := base.Add(30 * 24 * time.Hour)
	mk := func(id string, created, expires, revoked time.Time) {
		t.Helper()
		must(t, s.CreateToken(ctx, &tokenward.Token{ID: id, Name: id, Kind: tokenward.TokenJIT, CreatedAt: created, ExpiresAt: expires,
			Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/a/*")}}, tokenward.HashToken(id)))
		if !revoked.IsZero() {
			must(t, s.RevokeToken(ctx, id, revoked))
		}
		must(t, s.SetStaleNotice(ctx, id, base))
	}
	var none time.Time
	mk("tok_expired_old", base, base.Add(time.Hour), none)                   // goes
	mk("tok_revoked_old", base.Add(time.Minute), none, base)                 // goes
	mk("tok_expired_new", base, cut.Add(time.Hour), none)                    // expired after the cut: stays
	mk("tok_revoked_new", base, none, cut.Add(time.Minute))                  // stays
	mk("tok_active", base, none, none)                                       // stays
	mk("tok_active_expiring", base, cut.Add(48*time.Hour), none)             // stays
	mk("tok_leased", base.Add(2*time.Minute), base.Add(time.Hour), none)     // a live lease names it: stays
	mk("tok_lease_done", base.Add(3*time.Minute), base.Add(time.Hour), none) // its lease is revoked: goes
	ls, leasing := s.(tokenward.LeaseStore)
	if leasing {
		newProject(t, s, "acme", "prod")
		must(t, ls.PutDynamicSource(ctx, dynSource("db")))
		must(t, ls.CreateLease(ctx, newLease("lease_live", "db", "tok_leased", tokenward.LeaseActive, base), tokenward.LeaseLimits{}))
		must(t, ls.CreateLease(ctx, newLease("lease_done", "db", "tok_lease_done", tokenward.LeaseRevoked, base), tokenward.LeaseLimits{}))
	}
	cs, consoles := s.(tokenward.ConsoleSessionStore)
	if consoles {
		for _, id := range []string{"tok_expired_old", "tok_active"} {
			must(t, cs.CreateConsoleSession(ctx, tokenward.HashToken("session of "+id), &tokenward.ConsoleSession{TokenID: id, SealedToken: []byte("sealed"),
				CreatedAt: base, LastSeenAt: base, ExpiresAt: cut.Add(time.Hour)}))
		}
	}
	if n, err := s.ActiveTokens(ctx, cut); err != nil || n != 3 {
		t.Fatalf("active tokens at the cut: got %d, %v; want 3 (expired_new, active, active_expiring)", n, err)
	}

	// The limit takes the oldest first.
	got, err := s.PruneTokens(ctx, cut, 1)
	must(t, err)
	if len(got) != 1 || got[0] != "tok_expired_old" {
		t.Fatalf("prune with limit 1: got %v; want [tok_expired_old]", got)
	}
	got, err = s.PruneTokens(ctx, cut, 100)
	must(t, err)
	want := []string{"tok_revoked_old", "tok_lease_done"}
	if !leasing {
		want = []string{"tok_revoked_old", "tok_leased", "tok_lease_done"}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("prune: got %v; want %v", got, want)
	}
	if again, err := s.PruneTokens(ctx, cut, 100); err != nil || len(again) != 0 {
		t.Fatalf("prune again: got %v, %v; want nothing", again, err)
	}
	for _, id := range append([]string{"tok_expired_old"}, want...) {
		_, err := s.TokenByHash(ctx, tokenward.HashToken(id))
		wantCode(t, err, tokenward.ENOTFOUND)
	}
	all, err := s.Tokens(ctx)
	must(t, err)
	if len(all) != 8-1-len(want) {
		t.Fatalf("got %d tokens after pruning; want %d", len(all), 8-1-len(want))
	}
	notices, err := s.StaleNotices(ctx)
	must(t, err)
	if _, ok := notices["tok_expired_old"]; ok || len(notices) != len(all) {
		t.Fatalf("stale notices after pruning: got %v; want those of the %d tokens left", notices, len(all))
	}
	if consoles {
		_, err := cs.ConsoleSession(ctx, tokenward.HashToken("session of tok_expired_old"))
		wantCode(t, err, tokenward.ENOTFOUND)
		_, err = cs.ConsoleSession(ctx, tokenward.HashToken("session of tok_active"))
		must(t, err)
	}
}

func testAnomalies(t *testing.T, s MonitorStore) {
	recs := []*monitor.Record{
		{ID: "anm_0000000000000001", Anomaly: monitor.Anomaly{Rule: monitor.RuleRevokedUse, Severity: monitor.SeverityCritical, Time: base, TokenID: "tok_a",
			Explanation: "revoked", Evidence: []monitor.Evidence{{Seq: 7, RequestID: "r7"}}, Resource: "payments/prod/X", SourceIP: "10.0.0.1"}},
		{ID: "anm_0000000000000002", Anomaly: monitor.Anomaly{Rule: monitor.RuleRateBurst, Severity: monitor.SeverityMedium, Time: base.Add(time.Minute), TokenID: "tok_b", Explanation: "burst", Evidence: []monitor.Evidence{}}},
	}
	for _, r := range recs {
		must(t, s.AddAnomaly(ctx, r))
	}
	wantCode(t, s.AddAnomaly(ctx, recs[0]), tokenward.ECONFLICT)
	list, err := s.Anomalies(ctx, true, 0)
	must(t, err)
	if len(list) != 2 || list[0].ID != recs[1].ID || list[1].ID != recs[0].ID {
		t.Fatalf("got %d anomalies; want 2, newest first", len(list))
	}
	if got := list[1]; got.Evidence[0].Seq != 7 || got.Resource != "payments/prod/X" || got.SourceIP != "10.0.0.1" || !got.Time.Equal(base) || !got.Open() {
		t.Fatalf("got %+v; want the stored anomaly back", got)
	}
	if list, _ := s.Anomalies(ctx, true, 1); len(list) != 1 {
		t.Fatalf("limit 1: got %d", len(list))
	}
	must(t, s.AckAnomaly(ctx, recs[0].ID, "tok_admin", base.Add(time.Hour)))
	must(t, s.AckAnomaly(ctx, recs[0].ID, "tok_other", base.Add(2*time.Hour)))
	got, err := s.Anomaly(ctx, recs[0].ID)
	must(t, err)
	if got.AckedBy != "tok_admin" || !got.AckedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("got acked %s by %s; want the first acknowledgement kept", got.AckedAt, got.AckedBy)
	}
	if open, _ := s.Anomalies(ctx, true, 0); len(open) != 1 {
		t.Fatalf("open: got %d; want 1", len(open))
	}
	if all, _ := s.Anomalies(ctx, false, 0); len(all) != 2 {
		t.Fatalf("all: got %d; want 2", len(all))
	}
	wantCode(t, s.AckAnomaly(ctx, "anm_ffffffffffffffff", "x", base), tokenward.ENOTFOUND)
	_, err = s.Anomaly(ctx, "anm_ffffffffffffffff")
	wantCode(t, err, tokenward.ENOTFOUND)
}

// testMonitorState: the stored cursor never goes back. A save with a
// newer or equal cursor replaces the snapshot; one with an older cursor is
// refused and leaves it; of racing saves, the highest cursor stays.
func testMonitorState(t *testing.T, s MonitorStore) {
	_, err := s.MonitorState(ctx)
	wantCode(t, err, tokenward.ENOTFOUND)
	save := func(snap string, cursor int64, want bool) {
		t.Helper()
		saved, err := s.SaveMonitorState(ctx, []byte(snap), cursor, base)
		must(t, err)
		if saved != want {
			t.Fatalf("save %s at cursor %d: got saved %v; want %v", snap, cursor, saved, want)
		}
	}
	stored := func(want string) {
		t.Helper()
		got, err := s.MonitorState(ctx)
		must(t, err)
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("got %s; want %s", got, want)
		}
	}
	save(`{"v":1}`, 10, true) // first save, empty store
	stored(`{"v":1}`)
	save(`{"v":2}`, 20, true) // newer
	stored(`{"v":2}`)
	save(`{"v":3}`, 15, false) // older: refused
	stored(`{"v":2}`)
	save(`{"v":4}`, 20, true) // equal: saved again
	stored(`{"v":4}`)
	save(`{"v":5}`, 0, false)
	stored(`{"v":4}`)

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cur := int64(100 + (i*5)%n) // 100..107, in no order
			_, err := s.SaveMonitorState(ctx, []byte(fmt.Sprintf(`{"v":%d}`, cur)), cur, base.Add(time.Duration(i)*time.Second))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	stored(fmt.Sprintf(`{"v":%d}`, 100+n-1))
	save(`{"v":6}`, 100+n-2, false)
	stored(fmt.Sprintf(`{"v":%d}`, 100+n-1))
}

func testStaleNotices(t *testing.T, s MonitorStore) {
	must(t, s.SetStaleNotice(ctx, "tok_a", base))
	must(t, s.SetStaleNotice(ctx, "tok_b", base))
	must(t, s.SetStaleNotice(ctx, "tok_a", base.Add(time.Hour)))
	must(t, s.ClearStaleNotice(ctx, "tok_b"))
	must(t, s.ClearStaleNotice(ctx, "tok_none"))
	got, err := s.StaleNotices(ctx)
	must(t, err)
	if len(got) != 1 || !got["tok_a"].Equal(base.Add(time.Hour)) {
		t.Fatalf("got %v; want tok_a at %s", got, base.Add(time.Hour))
	}
}

// testRevokeStaleToken: a stale token is revoked only while its last
// recorded use is not after the bound; a use recorded first keeps it, a
// revoked token keeps its first revocation, and no token is ENOTFOUND.
func testRevokeStaleToken(t *testing.T, s MonitorStore) {
	notified := base.Add(time.Hour)
	mk := func(name string) *tokenward.Token {
		t.Helper()
		tok := &tokenward.Token{ID: tokenward.NewTokenID(), Name: name, Kind: tokenward.TokenService,
			Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/e/*")}, CreatedAt: base}
		must(t, s.CreateToken(ctx, tok, tokenward.HashToken(name+"-secret")))
		return tok
	}
	never, before, at, after, revoked := mk("never"), mk("before"), mk("at"), mk("after"), mk("revoked")
	must(t, s.TouchTokens(ctx, []tokenward.TokenUse{
		{ID: before.ID, At: base.Add(time.Minute), IP: "10.0.0.1"},
		{ID: at.ID, At: notified, IP: "10.0.0.1"},
		{ID: after.ID, At: notified.Add(time.Nanosecond), IP: "10.0.0.1"},
	}))
	must(t, s.RevokeToken(ctx, revoked.ID, base.Add(2*time.Minute)))
	revokeAt := base.Add(48 * time.Hour)
	for _, tc := range []struct {
		tok       *tokenward.Token
		want      bool
		revokedAt time.Time
	}{
		{never, true, revokeAt},
		{before, true, revokeAt},
		{at, true, revokeAt},
		{after, false, time.Time{}},
		{revoked, false, base.Add(2 * time.Minute)},
	} {
		got, err := s.RevokeStaleToken(ctx, tc.tok.ID, notified, revokeAt)
		must(t, err)
		if got != tc.want {
			t.Errorf("%s: got revoked %v; want %v", tc.tok.Name, got, tc.want)
		}
		stored, err := s.Token(ctx, tc.tok.ID)
		must(t, err)
		if !stored.RevokedAt.Equal(tc.revokedAt) {
			t.Errorf("%s: got revoked at %v; want %v", tc.tok.Name, stored.RevokedAt, tc.revokedAt)
		}
	}
	if _, err := s.RevokeStaleToken(ctx, "tok_none", notified, revokeAt); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("no token: got %v; want ENOTFOUND", err)
	}
}

// testExpiryAlerts: an item is claimed for an alert once per period,
// whichever caller (server) asks, and pruned claims are forgotten.
func testExpiryAlerts(t *testing.T, s MonitorStore) {
	day := 24 * time.Hour
	steps := []struct {
		item string
		at   time.Time
		want bool
	}{
		{"token:tok_a", base, true},
		{"token:tok_a", base, false},                        // another server in the same run
		{"token:tok_a", base.Add(day - time.Second), false}, // within the day
		{"secret:p/a/K", base.Add(time.Hour), true},         // another item
		{"token:tok_a", base.Add(day), true},                // a day on
		{"token:tok_a", base.Add(day + time.Hour), false},
	}
	for i, st := range steps {
		got, err := s.ClaimExpiryAlert(ctx, st.item, st.at, st.at.Add(-day))
		must(t, err)
		if got != st.want {
			t.Fatalf("step %d: claim %s at %s: got %v; want %v", i, st.item, st.at, got, st.want)
		}
	}
	// Pruning forgets claims made before its bound, and only those.
	must(t, s.PruneExpiryAlerts(ctx, base.Add(2*time.Hour)))
	if got, err := s.ClaimExpiryAlert(ctx, "secret:p/a/K", base.Add(3*time.Hour), base.Add(3*time.Hour-day)); err != nil || !got {
		t.Fatalf("claim of a pruned item: got %v, %v; want true", got, err)
	}
	if got, err := s.ClaimExpiryAlert(ctx, "token:tok_a", base.Add(day+2*time.Hour), base.Add(2*time.Hour)); err != nil || got {
		t.Fatalf("claim of a kept item within its day: got %v, %v; want false", got, err)
	}
}

func testReplaceTokenGrants(t *testing.T, s MonitorStore) {
	tok := &tokenward.Token{ID: "tok_narrow", Name: "n", Kind: tokenward.TokenService, CreatedAt: base,
		Grants: tokenward.Grants{tokenward.MustParseGrant("read:p/a/*"), tokenward.MustParseGrant("read:p/b/*")}}
	must(t, s.CreateToken(ctx, tok, tokenward.HashToken("x")))
	must(t, s.ReplaceTokenGrants(ctx, tok.ID, tokenward.Grants{tokenward.MustParseGrant("read:p/b/*")}))
	got, err := s.TokenByHash(ctx, tokenward.HashToken("x"))
	must(t, err)
	if gs := got.Grants.Strings(); len(gs) != 1 || gs[0] != "read:p/b/*" {
		t.Fatalf("got grants %v; want read:p/b/*", gs)
	}
	wantCode(t, s.ReplaceTokenGrants(ctx, tok.ID, nil), tokenward.EINVALID)
	must(t, s.RevokeToken(ctx, tok.ID, base))
	wantCode(t, s.ReplaceTokenGrants(ctx, tok.ID, got.Grants), tokenward.ENOTFOUND)
	wantCode(t, s.ReplaceTokenGrants(ctx, "tok_none", got.Grants), tokenward.ENOTFOUND)
}

func testArchiveRestorePurge(t *testing.T, s MonitorStore) {
	must(t, s.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"a", "b"}, CreatedAt: base}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("k")}))
	put := func(env, name string, prev int) {
		must(t, s.PutSecret(ctx, &tokenward.Secret{Project: "p", Env: env, Name: name, Owner: "team"}, prev,
			&tokenward.SecretVersion{Version: prev + 1, CreatedAt: base, Ciphertext: []byte(name + "-ct")}))
	}
	put("a", "X", 0)
	put("a", "X", 1)
	put("a", "Y", 0)
	put("b", "Z", 0)
	a := &monitor.Archive{Project: "p", Env: "a", ArchivedAt: base, ArchivedBy: "tok_admin", PurgeAt: base.Add(24 * time.Hour)}
	n, err := s.ArchiveEnv(ctx, a)
	must(t, err)
	if n != 2 {
		t.Fatalf("archived %d; want 2", n)
	}
	if list, _ := s.Secrets(ctx, "p", "a"); len(list) != 0 {
		t.Fatalf("got %d secrets listed after archiving; want 0", len(list))
	}
	_, _, err = s.CurrentSecret(ctx, "p", "a", "X")
	wantCode(t, err, tokenward.ENOTFOUND)
	if list, _ := s.Secrets(ctx, "p", "b"); len(list) != 1 {
		t.Fatalf("the other environment: got %d secrets; want 1", len(list))
	}
	_, err = s.ArchiveEnv(ctx, a)
	wantCode(t, err, tokenward.ECONFLICT)
	_, err = s.ArchiveEnv(ctx, &monitor.Archive{Project: "p", Env: "none", ArchivedAt: base, PurgeAt: base})
	wantCode(t, err, tokenward.ENOTFOUND)
	arch, err := s.Archives(ctx)
	must(t, err)
	if len(arch) != 1 || arch[0].Secrets != 2 || !arch[0].PurgeAt.Equal(base.Add(24*time.Hour)) || arch[0].ArchivedBy != "tok_admin" {
		t.Fatalf("got archives %+v", arch)
	}

	// A secret written again under an archived name blocks the restore.
	put("a", "Y", 0)
	_, err = s.RestoreEnv(ctx, "p", "a")
	wantCode(t, err, tokenward.ECONFLICT)
	// A staged version (rotation's PENDING label) travels with the archive.
	ls, hasLabels := s.(tokenward.LabelStore)
	if hasLabels {
		must(t, ls.PutPendingVersion(ctx, "p", "b", "Z", "rot_1", &tokenward.SecretVersion{Version: 2, CreatedAt: base, Ciphertext: []byte("Z2-ct")}))
	}
	// So does a version's deletion mark (the Vault API's soft delete).
	ds, hasStates := s.(tokenward.VersionDeleteStore)
	if hasStates {
		must(t, ds.DeleteVersions(ctx, "p", "b", "Z", []int{1}, base))
	}
	if _, err := s.ArchiveEnv(ctx, &monitor.Archive{Project: "p", Env: "b", ArchivedAt: base, PurgeAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// Restore b: versions and metadata come back whole.
	n, err = s.RestoreEnv(ctx, "p", "b")
	must(t, err)
	if n != 1 {
		t.Fatalf("restored %d; want 1", n)
	}
	meta, v, err := s.CurrentSecret(ctx, "p", "b", "Z")
	must(t, err)
	if meta.Owner != "team" || v.Version != 1 || string(v.Ciphertext) != "Z-ct" {
		t.Fatalf("got %+v %+v; want the archived secret back", meta, v)
	}
	if hasLabels {
		l, err := ls.SecretLabels(ctx, "p", "b", "Z")
		must(t, err)
		if l.Current != 1 || l.Pending != 2 || l.PendingRotation != "rot_1" {
			t.Fatalf("got labels %+v after restore; want current 1, pending 2 of rot_1", l)
		}
	}
	if hasStates {
		st, err := ds.VersionStates(ctx, "p", "b", "Z")
		must(t, err)
		if !st[1].DeletedAt.Equal(base) {
			t.Fatalf("got version states %+v after restore; want version 1 deleted", st)
		}
	}
	_, err = s.RestoreEnv(ctx, "p", "b")
	wantCode(t, err, tokenward.ENOTFOUND)

	// Purge: only what is due, and each archive once.
	gone, err := s.PurgeArchive(ctx, "p", "a", base.Add(time.Hour))
	must(t, err)
	if gone != nil {
		t.Fatalf("purged %+v before its time", gone)
	}
	gone, err = s.PurgeArchive(ctx, "p", "b", base.Add(24*time.Hour))
	must(t, err)
	if gone != nil {
		t.Fatalf("purged %+v, which is not archived", gone)
	}
	gone, err = s.PurgeArchive(ctx, "p", "a", base.Add(24*time.Hour))
	must(t, err)
	if gone == nil || gone.Project != "p" || gone.Env != "a" || gone.Secrets != 2 || !gone.PurgeAt.Equal(base.Add(24*time.Hour)) {
		t.Fatalf("got purged %+v; want p/a", gone)
	}
	gone, err = s.PurgeArchive(ctx, "p", "a", base.Add(24*time.Hour))
	must(t, err)
	if gone != nil {
		t.Fatalf("purged %+v a second time", gone)
	}
	_, err = s.RestoreEnv(ctx, "p", "a")
	wantCode(t, err, tokenward.ENOTFOUND)
	if arch, _ := s.Archives(ctx); len(arch) != 0 {
		t.Fatalf("got %d archives after purge; want 0", len(arch))
	}
	// The purge took the archived rows with it: archiving the environment
	// again (its new Y) does not collide with the purged Y.
	n, err = s.ArchiveEnv(ctx, &monitor.Archive{Project: "p", Env: "a", ArchivedAt: base, PurgeAt: base.Add(time.Hour)})
	must(t, err)
	if n != 1 {
		t.Fatalf("archived %d after purge; want 1", n)
	}
}
