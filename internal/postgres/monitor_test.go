package postgres_test

import (
	"testing"

	"github.com/tokenward/tokenward/internal/storetest"
)

func TestMonitorConformance(t *testing.T) {
	storetest.RunMonitor(t, func(t *testing.T) storetest.MonitorStore {
		// The suite sets up tokens and secrets through tokenward.Store,
		// which store.go (the core store's branch) brings; until that is
		// merged there is nothing to run it on.
		s, ok := any(MustOpenDB(t)).(storetest.MonitorStore)
		if !ok {
			t.Skip("postgres.DB is not a tokenward.Store yet (store.go not merged)")
		}
		return s
	})
}
