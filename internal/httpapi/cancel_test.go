package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestClientCancelIsNoServerError: a client that goes away while its request
// is being served is no server fault. Nothing is logged at ERROR (neither by
// the server nor by the audit broker), and the request is still audited,
// with nginx's 499.
func TestClientCancelIsNoServerError(t *testing.T) {
	e := mustServeAudited(t)
	// Read once the server has closed: slog's handler serialises writes.
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.api.Logger = logger
	e.broker.Logger = logger
	// The audit routes wait for the journal (Flush) before they read; this
	// one waits until the client has gone, as a slow flush would.
	entered := make(chan struct{})
	e.api.AuditLog.Flush = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	// A store that honours the context (PostgreSQL) could not record the
	// entry under a canceled one.
	var auditCtxErr error
	e.api.Audit = func(ctx context.Context, en *tokenward.AuditEntry) error {
		if en.Action == "audit.search" {
			auditCtxErr = ctx.Err()
		}
		return e.broker.Record(ctx, en)
	}
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/audit/entries", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.admin)
	done := make(chan error, 1)
	go func() {
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; err == nil {
		t.Fatal("got an answer; want the client's request canceled")
	}
	e.srv.Close() // waits for the handler to finish

	if l := logs.String(); strings.Contains(l, "level=ERROR") || !strings.Contains(l, "status=499") {
		t.Errorf("logs:\n%s\nwant no ERROR line and a debug line with status 499", l)
	}
	if auditCtxErr != nil {
		t.Errorf("audit hook got a context with %v; want one the client cannot cancel", auditCtxErr)
	}
	var got *tokenward.AuditEntry
	for _, en := range e.entries(t) {
		if en.Action == "audit.search" {
			got = en
		}
	}
	if got == nil {
		t.Fatal("got no audit.search entry; want the canceled request audited")
	}
	if got.Status != 499 || got.Outcome != tokenward.OutcomeError || got.Reason != "the client closed the request before the answer" {
		t.Errorf("got status %d outcome %q reason %q; want 499 error \"the client closed the request before the answer\"", got.Status, got.Outcome, got.Reason)
	}
}
