package sqlite_test

import (
	"testing"

	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestLabelsConformance(t *testing.T) {
	storetest.RunLabels(t, func(t *testing.T) storetest.LabelledStore { return MustOpenDB(t) })
}

func TestRotationConformance(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) rotate.Store {
		db := MustOpenDB(t)
		t.Cleanup(func() { db.Close() })
		return db.Rotations()
	})
}

func TestVersionDeletesConformance(t *testing.T) {
	storetest.RunVersionDeletes(t, func(t *testing.T) storetest.VersionDeletingStore { return MustOpenDB(t) })
}

func TestBulkJobsConformance(t *testing.T) {
	storetest.RunBulkJobs(t, func(t *testing.T) rotate.BulkJobStore {
		db := MustOpenDB(t)
		t.Cleanup(func() { db.Close() })
		return db.Rotations()
	})
}
