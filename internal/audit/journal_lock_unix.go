//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f without waiting; the lock
// goes with the descriptor, so a crashed server never leaves it behind.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w (%s)", ErrJournalInUse, f.Name())
	}
	if err != nil {
		return fmt.Errorf("audit: lock journal: %w", err)
	}
	return nil
}
