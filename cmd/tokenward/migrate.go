//go:build !tokenward_client

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/migrate"
	"github.com/tokenward/tokenward/internal/postgres"
)

func (m *Main) newMigrateCommand() *cobra.Command {
	var from, to, keyFile, output string
	cmd := &cobra.Command{
		Use:   "migrate --from DATA-DIR|postgres://… --to postgres://…|DATA-DIR",
		Short: "Copy an install between SQLite and PostgreSQL, sealed values as they are",
		Long: `migrate copies every table of one install into a new, empty one: a data
directory's SQLite file into a PostgreSQL database, or the reverse. Values stay
sealed (no master key is needed); ids, tokens, bindings, rotation state,
monitor state and the audit trail with its checkpoints are copied as they are.

The target's schema is made as a server would make it; both sides must be at
the same schema version, the target must hold no rows, and the two must hold
the same tables. The copy is one transaction on the target, committed only
when every table's row count and checksum read back from the target match the
source's. The target's audit chain is then verified, its checkpoints against
--audit-key (default: the audit.key of a data directory on either side).

Stop the servers first: a write made during the copy would not be in it, so
migrate refuses an install that a server runs on (a data directory's
server.lock, a database's server lock), and no server starts on either side
while it copies. It refuses a data directory whose audit journal still holds
entries (its last server was killed): start the server on it once and stop
it, which stores them, then migrate. The master key and audit.key stay where
they are: a server on the target needs the same key file (or
TOKENWARD_MASTER_KEY) and audit.key in its --data-dir. Prefer
PGPASSWORD or ~/.pgpass to a password in the URL.`,
		Example: "  tokenward migrate --from /var/lib/tokenward --to 'postgres://tokenward@db:5432/tokenward?sslmode=verify-full'\n" +
			"  tokenward migrate --from 'postgres://tokenward@db:5432/tokenward' --to ./data-sqlite -o json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || to == "" {
				return usageError("migrate needs --from and --to")
			}
			if from == to {
				return usageError("--from and --to name the same install")
			}
			return m.migrate(cmd.Context(), from, to, keyFile, output == "json")
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the install to copy: a data directory (SQLite) or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "the new install: a postgres:// URL of an empty database, or a data directory without a store")
	cmd.Flags().StringVar(&keyFile, "audit-key", "", "PEM public key (tokenward audit key) or audit.key that signed the audit checkpoints")
	outputFlag(cmd, &output, "table", "json")
	return cmd
}

// migrateReport is what migrate prints.
type migrateReport struct {
	*migrate.Result
	Audit migrateAudit `json:"audit"`
}

type migrateAudit struct {
	OK                  bool   `json:"ok"`
	Entries             int64  `json:"entries"`
	Checkpoints         int    `json:"checkpoints"`
	CheckpointsVerified bool   `json:"checkpoints_verified"` // false without a key
	KeyID               string `json:"key_id,omitempty"`
	Problem             string `json:"problem,omitempty"`
}

func (m *Main) migrate(ctx context.Context, from, to, keyFile string, asJSON bool) (err error) {
	committed := false
	fromSC, toSC := storageConfig{URL: from}, storageConfig{URL: to}
	pub, err := migrateAuditKey(keyFile, fromSC, toSC)
	if err != nil {
		return err
	}
	var src migrate.End
	if fromSC.isPostgres() {
		src, err = migrate.OpenPostgres(ctx, from, false)
	} else {
		path := filepath.Join(from, dbFileName)
		if _, statErr := os.Stat(path); statErr != nil {
			return fmt.Errorf("--from: no store at %s", path)
		}
		release, lockErr := lockDataDir(from, true)
		if lockErr != nil {
			return fmt.Errorf("--from: %w", lockErr)
		}
		defer release()
		if err := auditJournalStored(from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		src, err = migrate.OpenSQLite(ctx, path, false)
	}
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	if fromSC.isPostgres() {
		release, err := lockPostgres(ctx, fromSC, "--from")
		if err != nil {
			return err
		}
		defer release()
	}

	// The target's schema, made the way a server makes it.
	if !toSC.isPostgres() {
		toSC.URL = ""
		if _, statErr := os.Stat(to); errors.Is(statErr, fs.ErrNotExist) {
			if err := os.MkdirAll(to, 0o700); err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			// A failed copy leaves no directory behind; a committed one
			// stays, whatever its audit chain says.
			defer func() {
				if err != nil && !committed {
					os.RemoveAll(to)
				}
			}()
		}
		release, lockErr := lockDataDir(to, true)
		if lockErr != nil {
			return fmt.Errorf("--to: %w", lockErr)
		}
		defer release()
	}
	store, err := toSC.open(ctx, to, true)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	store.Close()
	if toSC.isPostgres() {
		release, err := lockPostgres(ctx, toSC, "--to")
		if err != nil {
			return err
		}
		defer release()
	}
	var dst migrate.End
	if toSC.isPostgres() {
		dst, err = migrate.OpenPostgres(ctx, to, true)
	} else {
		dst, err = migrate.OpenSQLite(ctx, filepath.Join(to, dbFileName), true)
	}
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()

	res, err := migrate.Copy(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	committed = true
	rep := migrateReport{Result: res}
	if rep.Audit, err = verifyMigratedAudit(ctx, toSC, to, pub); err != nil {
		return fmt.Errorf("migrate: the copy is committed, but its audit chain could not be read: %w", err)
	}
	if asJSON {
		err = writeJSON(m.Stdout, rep)
	} else {
		err = m.printMigrate(rep)
	}
	if err != nil {
		return err
	}
	if !rep.Audit.OK {
		return &exitError{code: 1, err: fmt.Errorf("migrate: the copy is committed, but its audit chain does not verify: %s (the source's would not either: the checksums match)", rep.Audit.Problem)}
	}
	return nil
}

func (m *Main) printMigrate(rep migrateReport) error {
	rows := make([][]string, len(rep.Tables))
	for i, t := range rep.Tables {
		ok := "ok"
		if !t.ChecksumOK {
			ok = "MISMATCH"
		}
		rows[i] = []string{t.Table, strconv.FormatInt(t.Rows, 10), t.Checksum[:16], ok}
	}
	if err := m.table([]string{"TABLE", "ROWS", "CHECKSUM", "CHECKSUM OK"}, rows); err != nil {
		return err
	}
	a := rep.Audit
	switch {
	case !a.OK:
		fmt.Fprintf(m.Stderr, "audit chain BROKEN: %s\n", a.Problem)
	case a.CheckpointsVerified:
		fmt.Fprintf(m.Stderr, "audit chain OK: %d entries, %d signed checkpoints (key %s)\n", a.Entries, a.Checkpoints, a.KeyID)
	default:
		fmt.Fprintf(m.Stderr, "audit chain OK: %d entries; %d checkpoints not checked (no audit key: pass --audit-key)\n", a.Entries, a.Checkpoints)
	}
	fmt.Fprintf(m.Stderr, "Copied %s to %s (schema version %d).\n", rep.From, rep.To, rep.SchemaVersion)
	return nil
}

// migrateAuditKey is the public key of --audit-key (a PEM public key or
// an audit.key), or of the audit.key in a data directory on either side,
// or nil when there is none.
func migrateAuditKey(keyFile string, sides ...storageConfig) (ed25519.PublicKey, error) {
	if keyFile != "" {
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-key: %w", err)
		}
		if pub, err := audit.ParsePublicKey(data); err == nil {
			return pub, nil
		}
		key, err := audit.LoadKey(keyFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-key: %s holds neither a PEM public key nor an audit.key: %s", keyFile, tokenward.ErrorMessage(err))
		}
		return key.Public().(ed25519.PublicKey), nil
	}
	for _, sc := range sides {
		if sc.isPostgres() {
			continue
		}
		key, err := audit.LoadKey(filepath.Join(sc.URL, "audit.key"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit key: %s", tokenward.ErrorMessage(err))
		}
		return key.Public().(ed25519.PublicKey), nil
	}
	return nil, nil
}

// verifyMigratedAudit verifies the audit chain of the committed target
// through its own store, the way a server reads it; the checkpoints only
// with a key.
func verifyMigratedAudit(ctx context.Context, sc storageConfig, dataDir string, pub ed25519.PublicKey) (migrateAudit, error) {
	store, err := sc.open(ctx, dataDir, false)
	if err != nil {
		return migrateAudit{}, err
	}
	defer store.Close()
	cps, err := store.AuditCheckpoints(ctx)
	if err != nil {
		return migrateAudit{}, err
	}
	a := migrateAudit{Checkpoints: len(cps), CheckpointsVerified: pub != nil}
	given := cps
	if pub == nil {
		given = nil
	} else {
		a.KeyID = audit.KeyID(pub)
	}
	rep, err := audit.Verify(store.AuditEntries(ctx), given, pub)
	if err != nil {
		return migrateAudit{}, err
	}
	a.OK, a.Entries = rep.OK(), rep.Entries
	if p := rep.First(); p != nil {
		a.Problem = fmt.Sprintf("%s at seq %d: %s", p.Kind, p.Seq, p.Detail)
	}
	return a, nil
}

// auditJournalStored refuses a SQLite data directory whose audit journal
// (DATA-DIR/audit.journal, --audit-sync journal) holds anything past its
// header: entries a server answered with but may not have stored in the
// database, as it was killed (or its database refused them at shutdown).
// The next server start stores them before it serves; a copy of the
// database made before that lacks them, and its chain would still verify,
// only ending early. A server that stops cleanly leaves the header alone.
func auditJournalStored(dir string) error {
	path := filepath.Join(dir, "audit.journal")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the audit journal: %w", err)
	}
	// The header is one line; a journal cut inside it holds nothing.
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return nil
	}
	if rest := data[i+1:]; len(bytes.Trim(rest, "\x00")) > 0 {
		return fmt.Errorf("%s holds audit entries that may not be in the database yet (the last server on this data directory did not stop cleanly): start `tokenward server` on it once, which stores them, stop it, then migrate", path)
	}
	return nil
}

// lockPostgres takes a PostgreSQL side's server lock exclusively for the
// copy: it refuses while any server runs there (servers hold it shared),
// and no server can start until the copy is done.
func lockPostgres(ctx context.Context, sc storageConfig, flag string) (release func(), err error) {
	db, err := sc.open(ctx, "", false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	// No lost callback: a restart that ends the lock's session also breaks
	// the copy's one transaction, so nothing half-copied is committed.
	unlock, err := db.(pgStorage).LockMigration(ctx, nil)
	switch {
	case errors.Is(err, postgres.ErrServerRunning):
		db.Close()
		return nil, fmt.Errorf("%s: a tokenward server is running on this database: stop every server on it before migrating", flag)
	case errors.Is(err, postgres.ErrMigrating):
		db.Close()
		return nil, fmt.Errorf("%s: another tokenward migrate is copying this database", flag)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return func() { unlock(); db.Close() }, nil
}
