// Command tokenward is the tokenward server and its CLI in one binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		code := exitCode(err)
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "tokenward:", msg)
		}
		os.Exit(code)
	}
}
