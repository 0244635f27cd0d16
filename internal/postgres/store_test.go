package postgres_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgtest"
	"github.com/tokenward/tokenward/internal/postgres"
	"github.com/tokenward/tokenward/internal/rotate"
	"github.com/tokenward/tokenward/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenward.Store { return MustOpenDB(t) })
}

func TestLabelsConformance(t *testing.T) {
	storetest.RunLabels(t, func(t *testing.T) storetest.LabelledStore { return MustOpenDB(t) })
}

func TestGatewayConformance(t *testing.T) {
	storetest.RunGatewayRoutes(t, func(t *testing.T) storetest.GatewayStore { return MustOpenDB(t) })
}

func TestVersionDeletesConformance(t *testing.T) {
	storetest.RunVersionDeletes(t, func(t *testing.T) storetest.VersionDeletingStore { return MustOpenDB(t) })
}

func TestRotationConformance(t *testing.T) {
	storetest.RunRotation(t, func(t *testing.T) rotate.Store { return MustOpenDB(t).Rotations() })
}

func TestBulkJobsConformance(t *testing.T) {
	storetest.RunBulkJobs(t, func(t *testing.T) rotate.BulkJobStore { return MustOpenDB(t).Rotations() })
}

// TestTwoServersOneDatabase races two servers' stores on one database: a
// secret's next version and a secret's rotation are each won once.
func TestTwoServersOneDatabase(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	a, b := mustOpenURL(t, url), mustOpenURL(t, url)
	ctx := t.Context()
	must(t, a.CreateProject(ctx, &tokenward.Project{Name: "p", Envs: []string{"prod"}, CreatedAt: time.Now()}, &tokenward.DataKey{Project: "p", Version: 1, Wrapped: []byte("w")}))
	meta := &tokenward.Secret{Project: "p", Env: "prod", Name: "KEY"}
	for prev := range 3 {
		var wins atomic.Int32
		race(t, func(i int) {
			s := []*postgres.DB{a, b}[i%2]
			err := s.PutSecret(ctx, meta, prev, &tokenward.SecretVersion{Version: prev + 1, Ciphertext: []byte{byte(i)}, CreatedAt: time.Now()})
			switch {
			case err == nil:
				wins.Add(1)
			case tokenward.ErrorCode(err) != tokenward.ECONFLICT:
				t.Errorf("writer %d: got %v; want ECONFLICT or success", i, err)
			}
		})
		if wins.Load() != 1 {
			t.Fatalf("version %d: got %d winners; want 1", prev+1, wins.Load())
		}
	}
	var started atomic.Int32
	race(t, func(i int) {
		s := []*postgres.DB{a, b}[i%2]
		err := s.Rotations().CreateRotation(ctx, &rotate.Rotation{ID: fmt.Sprint("rot_", i), Path: "p/prod/KEY", Rotator: "random", Step: rotate.StepCreate, CreatedAt: time.Now()})
		switch {
		case err == nil:
			started.Add(1)
		case !errors.Is(err, rotate.ErrInFlight):
			t.Errorf("rotation %d: got %v; want rotate.ErrInFlight or success", i, err)
		}
	})
	if started.Load() != 1 {
		t.Fatalf("got %d rotations in flight for one secret; want 1", started.Load())
	}
}

// race runs fn(0) … fn(7) at once and waits for them.
func race(t *testing.T, fn func(i int)) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 8 {
		wg.Go(func() { <-start; fn(i) })
	}
	close(start)
	wg.Wait()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLeaseConformance(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeasingStore { return MustOpenDB(t) })
}
