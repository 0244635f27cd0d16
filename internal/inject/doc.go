// Package inject puts secrets into a child process's environment with their
// values masked in its output (tokenward run), and exports them for CI
// systems (tokenward export).
package inject
