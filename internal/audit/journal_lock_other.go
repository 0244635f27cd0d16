//go:build !unix

package audit

import "os"

// lockFile does nothing where flock is missing: run one server per data
// directory there.
func lockFile(*os.File) error { return nil }
