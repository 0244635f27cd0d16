//go:build !tokenward_client

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// serverLockFile, in a SQLite data directory, is what PostgreSQL's server
// lock is to a database: every server on the directory holds it shared
// while it runs, and migrate holds it exclusively while it copies. So
// migrate refuses a directory a server runs on (a write made during the
// copy would not be in it), and no server starts on one being copied.
const serverLockFile = "server.lock"

var (
	errDataDirServed    = errors.New("a tokenward server is running on this data directory: stop every server on it before migrating")
	errDataDirMigrating = errors.New("a tokenward migrate is copying this data directory: start the server when it is done")
)

// lockDataDir takes dir's server lock without waiting, shared (a server) or
// exclusive (migrate). The lock goes with the descriptor: a killed process
// never keeps it.
func lockDataDir(dir string, exclusive bool) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, serverLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	how, busy := syscall.LOCK_SH, errDataDirMigrating
	if exclusive {
		// Held shared by servers, or exclusively by another migrate: a
		// server is the likelier, and the advice is the same.
		how, busy = syscall.LOCK_EX, errDataDirServed
	}
	if err := flockNow(f, how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", busy, dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// errDataDirServer is a second server on a SQLite data directory.
var errDataDirServer = errors.New("another tokenward server is running on this data directory: SQLite is one server per data directory (several servers need PostgreSQL, docs/scale-out.md)")

// holdJournal takes the audit journal's lock (the one audit.Journal takes,
// an exclusive flock on the file) for a SQLite server that does not write
// the journal, so that no other server starts on dir while it runs. It
// goes with the descriptor, so it follows the file, not its path.
func holdJournal(path, dir string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := flockNow(f, syscall.LOCK_EX); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", errDataDirServer, dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// flockNow takes an advisory lock on f (syscall.LOCK_SH or LOCK_EX) without
// waiting: syscall.EWOULDBLOCK if another descriptor holds a conflicting
// one.
func flockNow(f *os.File, how int) error {
	return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
}
