//go:build !tokenward_client

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/core"
	"github.com/tokenward/tokenward/internal/seal"
)

const (
	keyFileName      = "master.key"
	auditKeyFileName = "audit.key"
	dbFileName       = "tokenward.db"
)

func (m *Main) newInitCommand() *cobra.Command {
	var dataDir string
	var sc storageConfig
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data directory, its master key and the first admin token",
		Long: `init creates the data directory (0700), a master key file (0600) unless
TOKENWARD_MASTER_KEY is set, the audit signing key audit.key (0600), the store
(SQLite in the data directory, or the PostgreSQL database --storage names),
and the first admin token, which it prints once. The keys never go into the
database: every server of a PostgreSQL install needs a copy of this
directory (or audit.key and TOKENWARD_MASTER_KEY).`,
		Example: "  tokenward init --data-dir /var/lib/tokenward > admin.env\n" +
			"  TOKENWARD_STORAGE='postgres://tokenward:…@db:5432/tokenward?sslmode=verify-full' tokenward init --data-dir /var/lib/tokenward > admin.env",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sc.validate(); err != nil {
				return err
			}
			token, err := m.initDataDir(cmd.Context(), dataDir, sc)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stderr, "Initialised %s. The admin token is shown once; keep it safe:\n", dataDir)
			fmt.Fprintf(m.Stdout, "TOKENWARD_TOKEN=%s\n", token)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./data", "data directory to create")
	sc.register(m, cmd.Flags())
	return cmd
}

// initClaimFile is created, exclusively, in the data directory while init
// runs. A second init on the same directory (two containers started at
// once on one volume) fails on it: otherwise, finding the first one's
// files, it would fail too and remove them, the master key or the
// database of an install the first one had reported made.
const initClaimFile = ".tokenward-init"

// initDataDir creates and initialises dir. On any failure it removes what
// it made, so nothing is half-written; it never removes what another
// init made.
func (m *Main) initDataDir(ctx context.Context, dir string, sc storageConfig) (token string, err error) {
	notEmpty := fmt.Errorf("data directory %s exists and is not empty", dir)
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return "", notEmpty
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	made := false
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		made = true
	}
	claim := filepath.Join(dir, initClaimFile)
	f, err := os.OpenFile(claim, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("another tokenward init is initialising %s (if none is running, one was killed half-way: empty the directory and run init again)", dir)
	}
	if err != nil {
		return "", err
	}
	f.Close()
	// Checked again now that the directory is claimed: another init may
	// have made it and finished since the first look.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		os.Remove(claim)
		if err != nil {
			return "", err
		}
		return "", notEmpty
	}
	defer func() {
		if err != nil {
			os.Remove(filepath.Join(dir, keyFileName))
			os.Remove(filepath.Join(dir, auditKeyFileName))
			for _, f := range []string{dbFileName, dbFileName + "-wal", dbFileName + "-shm"} {
				os.Remove(filepath.Join(dir, f))
			}
		}
		os.Remove(claim)
		if err != nil && made {
			os.Remove(dir)
		}
	}()
	var key []byte
	if env := m.Getenv("TOKENWARD_MASTER_KEY"); env != "" {
		if key, err = seal.ParseKey(env); err != nil {
			return "", fmt.Errorf("TOKENWARD_MASTER_KEY: %w", err)
		}
	} else if key, err = seal.WriteKeyFile(filepath.Join(dir, keyFileName)); err != nil {
		return "", err
	}
	// The audit signing key is made now, not at the first start, so a copy
	// of this directory is all another server on the same database needs:
	// every server must sign checkpoints with the same key.
	if _, err := audit.LoadOrCreateKey(filepath.Join(dir, auditKeyFileName)); err != nil {
		return "", err
	}
	db, err := sc.open(ctx, dir, true)
	if err != nil {
		return "", err
	}
	defer db.Close()
	token, err = core.Init(ctx, db, key, time.Now())
	if tokenward.ErrorCode(err) == tokenward.ECONFLICT && sc.isPostgres() {
		return "", errors.New("the PostgreSQL database is initialised already: give every server that install's master key (its key file or TOKENWARD_MASTER_KEY) instead of running init again")
	}
	return token, err
}

// loadMasterKey finds the unseal key: TOKENWARD_MASTER_KEY, else the key
// file given, else the data directory's key file.
func (m *Main) loadMasterKey(dataDir, keyFile string) ([]byte, error) {
	if env := m.Getenv("TOKENWARD_MASTER_KEY"); env != "" {
		key, err := seal.ParseKey(env)
		if err != nil {
			return nil, fmt.Errorf("TOKENWARD_MASTER_KEY: %w", err)
		}
		return key, nil
	}
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, keyFileName)
	}
	key, err := seal.ReadKeyFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no master key: %s does not exist and TOKENWARD_MASTER_KEY is not set (run `tokenward init`?)", keyFile)
	}
	return key, err
}
