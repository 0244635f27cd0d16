//go:build !tokenward_client

package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/seal"
	"github.com/tokenward/tokenward/internal/sqlite"
)

// TestConcurrentInit races two inits on one new data directory (two
// containers started at once on one volume), with a key file and with
// TOKENWARD_MASTER_KEY: one wins, and its install is whole: the loser,
// failing, removed neither its master key nor its database, so the
// winner's admin token works with the key in the directory. Before, the
// loser's clean-up removed the files of the winner, which had already
// printed its token, in about a third of the races.
func TestConcurrentInit(t *testing.T) {
	for name, envKey := range map[string]string{"key file": "", "TOKENWARD_MASTER_KEY": seal.EncodeKey(seal.NewKey())} {
		t.Run(name, func(t *testing.T) {
			m := &Main{Getenv: func(k string) string {
				if k == "TOKENWARD_MASTER_KEY" {
					return envKey
				}
				return ""
			}}
			for round := range 16 {
				dir := filepath.Join(t.TempDir(), "data")
				var wg sync.WaitGroup
				start := make(chan struct{})
				tokens, errs := make([]string, 2), make([]error, 2)
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						tokens[i], errs[i] = m.initDataDir(context.Background(), dir, storageConfig{})
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, err := range errs {
					if err == nil {
						if winner >= 0 {
							t.Fatalf("round %d: both inits succeeded", round)
						}
						winner = i
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: neither init succeeded: %v; %v", round, errs[0], errs[1])
				}
				if _, err := os.Stat(filepath.Join(dir, initClaimFile)); !os.IsNotExist(err) {
					t.Fatalf("round %d: init left its claim file behind (%v)", round, err)
				}
				key, err := m.loadMasterKey(dir, "")
				if err != nil {
					t.Fatalf("round %d: the winner's master key: %v (the loser: %v)", round, err, errs[1-winner])
				}
				db := sqlite.NewDB(filepath.Join(dir, dbFileName))
				if err := db.Open(); err != nil {
					t.Fatalf("round %d: the winner's database: %v (the loser: %v)", round, err, errs[1-winner])
				}
				c, err := core.New(context.Background(), db, key)
				if err == nil {
					_, err = c.Authenticate(context.Background(), tokens[winner], "")
				}
				db.Close()
				if err != nil {
					t.Fatalf("round %d: the winner's install: %v (the loser: %v)", round, err, errs[1-winner])
				}
			}
		})
	}
}
