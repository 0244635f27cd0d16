package storetest

import (
	"bytes"
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
		{"ReplaceTokenGrants", testReplaceTokenGrants},
		{"ArchiveRestorePurge", testArchiveRestorePurge},
	}...)
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

func testMonitorState(t *testing.T, s MonitorStore) {
	_, err := s.MonitorState(ctx)
	wantCode(t, err, tokenward.ENOTFOUND)
	must(t, s.SaveMonitorState(ctx, []byte(`{"v":1}`), base))
	must(t, s.SaveMonitorState(ctx, []byte(`{"v":2}`), base.Add(time.Hour)))
	got, err := s.MonitorState(ctx)
	must(t, err)
	if !bytes.Equal(got, []byte(`{"v":2}`)) {
		t.Fatalf("got %s; want the latest snapshot", got)
	}
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
