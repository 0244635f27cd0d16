package postgres_test

import (
	"testing"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenward.Store { return MustOpenDB(t) })
}

func TestLabelsConformance(t *testing.T) {
	storetest.RunLabels(t, func(t *testing.T) storetest.LabelledStore { return MustOpenDB(t) })
}

func TestRotationConformance(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) rotate.Store { return MustOpenDB(t).Rotations() })
}
