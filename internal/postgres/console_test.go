package postgres_test

import (
	"testing"

	"github.com/tokenward/tokenward/internal/storetest"
)

func TestConsoleSessions(t *testing.T) {
	storetest.RunConsoleSessions(t, func(t *testing.T) storetest.ConsoleStore { return MustOpenDB(t) })
}
