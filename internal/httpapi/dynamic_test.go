package httpapi_test

import (
	"testing"

	"github.com/tokenward/tokenward/internal/dynamic"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// enableDynamic wires dynamic sources as the server command does: the
// engine on the store, the postgres kind reading admin URLs as the server.
func enableDynamic(tb testing.TB, e *env) {
	tb.Helper()
	rs, err := e.core.RotationSecrets()
	if err != nil {
		tb.Fatal(err)
	}
	pg := &dynamic.Postgres{Secrets: rs}
	tb.Cleanup(pg.Close)
	e.api.Dynamic = dynamic.New(e.core.Store.(*sqlite.DB), map[string]dynamic.Kind{"postgres": pg})
}
