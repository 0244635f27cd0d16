package sqlite_test

import (
	"testing"

	"github.com/tokenward/tokenward/internal/storetest"
)

func TestDBRoutesConformance(t *testing.T) {
	storetest.RunDBRoutes(t, func(t *testing.T) storetest.DBRouteStore { return MustOpenDB(t) })
}
