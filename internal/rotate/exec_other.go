//go:build !unix

package rotate

import "os/exec"

// killGroupOnCancel leaves cmd as it is: without process groups, the end of
// its context kills the program only.
func killGroupOnCancel(*exec.Cmd) {}
