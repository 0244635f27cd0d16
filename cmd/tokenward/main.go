// Command tokenward is the tokenward server and its CLI in one binary;
// built with -tags tokenward_client, the CLI alone, which forwards the
// server's commands to that binary (forward.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tokenward/tokenward"
)

func main() {
	m := NewMain()
	m.Signals = true
	if err := m.Run(context.Background(), os.Args[1:]); err != nil {
		code := exitCode(err)
		if msg := errorLine(err); msg != "" {
			fmt.Fprintln(os.Stderr, "tokenward:", msg)
		}
		os.Exit(code)
	}
}

// errorLine is what follows "tokenward: " on stderr: a *tokenward.Error as
// the CLI shows one ("message (code)"), not with its own "tokenward: code: "
// prefix a second time — bare, or at the end of a wrapping chain ("read
// keyring: message (code)").
func errorLine(err error) string {
	if e, ok := err.(*tokenward.Error); ok {
		return cliError(e).Error()
	}
	line := err.Error()
	var e *tokenward.Error
	if errors.As(err, &e) {
		if prefix, ok := strings.CutSuffix(line, e.Error()); ok {
			return prefix + cliError(e).Error()
		}
	}
	return line
}
