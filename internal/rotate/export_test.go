package rotate

// Internals lent to the external tests (package rotate_test), which run the
// machine over the real store: internal/sqlite and internal/core import this
// package, so those tests cannot live inside it.

// ErrCrashed is what the machine returns when SetCrash stopped it.
var ErrCrashed = errCrashed

// SetCrash makes m stop at the named points as if the process died there.
func (m *Machine) SetCrash(crash func(point string) bool) { m.crash = crash }
