package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/monitor"
)

func (m *Main) newEventsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Change events: secret created/updated/rotated/retired, token revoked/suspended"}
	var count int
	tail := m.clientCommand(&cobra.Command{
		Use:     "tail [-n COUNT] [-o json]",
		Short:   "Stream change events as they happen (JSON lines with -o json), reconnecting when the stream drops",
		Example: "  tokenward events tail\n  tokenward events tail -n 1 -o json",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return usageError("-n must be 0 (until interrupted) or more")
			}
			return nil
		},
	}, true, func(x *call) error { return x.tailEvents(count) })
	tail.Flags().IntVarP(&count, "count", "n", 0, "stop after this many events (0: until interrupted)")
	cmd.AddCommand(tail)
	return cmd
}

// errEnough stops the stream once -n events were printed.
var errEnough = errors.New("enough events")

func (x *call) tailEvents(count int) error {
	seen := 0
	enc := json.NewEncoder(x.Stdout)
	enc.SetEscapeHTML(false)
	print := func(e monitor.Event) error {
		if x.json() {
			if err := enc.Encode(e); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(x.Stdout, eventLine(e))
		}
		seen++
		if count > 0 && seen >= count {
			return errEnough
		}
		return nil
	}
	for {
		err := x.c.StreamEvents(x.ctx, print)
		switch {
		case errors.Is(err, errEnough):
			return nil
		case x.ctx.Err() != nil:
			return nil
		case errors.Is(err, client.ErrUnreachable), errors.Is(err, client.ErrStreamEnded):
			// Dropped (slow, restarted server): say so and resubscribe.
			fmt.Fprintf(x.Stderr, "event stream interrupted (%v); reconnecting\n", err)
			select {
			case <-x.ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
		default:
			return cliError(err)
		}
	}
}

// eventLine is e as one line of `events tail` without -o json. Its text
// is not all the server's own (a bulk rotation's reason is its caller's),
// so control characters do not reach the reader's terminal, nor forge
// lines.
func eventLine(e monitor.Event) string {
	line := fmt.Sprintf("%s  %-16s %s", e.Time.UTC().Format(time.RFC3339), cellText(string(e.Type)), cellText(e.Resource))
	if e.Version > 0 {
		line += fmt.Sprintf(" v%d", e.Version)
	}
	if e.Actor != "" {
		line += " by " + cellText(e.Actor)
	}
	if e.Reason != "" {
		line += " (" + cellText(e.Reason) + ")"
	}
	return line
}
