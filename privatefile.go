package tokenward

import (
	"io"
	"os"
)

// ReadPrivateFile reads a key file (the master key, the audit signing key,
// the TLS private key), refusing one that its group or others may read:
// the rule every private file of an install is held to. The mode is
// checked on the opened file, so it is the mode of what is read.
func ReadPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- an operator's own key file, named by a flag or the data directory
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, Errorf(EINVALID, "%s: mode %04o lets others read it; want 0600", path, perm)
	}
	return io.ReadAll(f)
}
