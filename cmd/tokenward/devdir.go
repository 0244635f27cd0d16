//go:build !tokenward_client

package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// The data directory of `server --dev` is a fresh temporary directory that
// the server removes when it stops. A dev server killed before it could
// (SIGKILL, a crash, a power cut) leaves its directory behind, master key
// included. So each dev server holds an exclusive lock on devOwnerFile in
// its directory for as long as it runs, and the next dev server to start
// removes every directory whose lock nobody holds.
const (
	devDirPattern = "tokenward-dev-*"
	devOwnerFile  = "owner.lock"
)

// makeDevDir removes what killed dev servers left in the temporary
// directory, then creates this server's directory and takes its lock.
// release removes the directory and drops the lock.
func makeDevDir(logger *slog.Logger) (dir string, release func(), err error) {
	sweepDevDirs(os.TempDir(), logger)
	dir, err = os.MkdirTemp("", devDirPattern)
	if err != nil {
		return "", nil, err
	}
	// The lock is taken before the file gets its name, so a server sweeping
	// meanwhile never finds an owner file that nobody has locked yet.
	tmp := filepath.Join(dir, devOwnerFile+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = lockDevOwner(f)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, devOwnerFile))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("dev data directory: %w", err)
	}
	return dir, func() {
		os.RemoveAll(dir)
		f.Close()
	}, nil
}

// sweepDevDirs removes the dev data directories under tmp that are this
// user's own and whose owner file nobody holds locked: their server is gone.
// A directory without an owner file (an older version's, or one whose
// server is still starting) is left alone, and so is anything that is not
// a plain directory of this user's.
func sweepDevDirs(tmp string, logger *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, devDirPattern))
	for _, dir := range dirs {
		if !ownPlainDir(dir) {
			continue
		}
		owner, err := os.OpenFile(filepath.Join(dir, devOwnerFile), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if lockDevOwner(owner) == nil {
			if err := os.RemoveAll(dir); err != nil {
				logger.Warn("could not remove the data directory of a dev server that was killed", "dir", dir, "err", err)
			} else {
				logger.Info("removed the data directory of a dev server that was killed", "dir", dir)
			}
		}
		owner.Close()
	}
}

// lockDevOwner locks f exclusively without waiting; the lock goes with the
// descriptor, so a killed server never keeps it.
func lockDevOwner(f *os.File) error { return flockNow(f, syscall.LOCK_EX) }

// ownPlainDir reports whether path is a directory (not a link to one)
// owned by this process's user.
func ownPlainDir(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
