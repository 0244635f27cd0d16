package main

import (
	"context"
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
	var cf clientFlags
	var count int
	tail := &cobra.Command{
		Use:   "tail [-n COUNT] [-o json]",
		Short: "Stream change events as they happen (JSON lines with -o json), reconnecting when the stream drops",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return usageError("-n must be 0 (until interrupted) or more")
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			return m.tailEvents(cmd.Context(), c, cf.output, count)
		},
	}
	cf.register(tail, true)
	tail.Flags().IntVarP(&count, "count", "n", 0, "stop after this many events (0: until interrupted)")
	cmd.AddCommand(tail)
	return cmd
}

// errEnough stops the stream once -n events were printed.
var errEnough = errors.New("enough events")

func (m *Main) tailEvents(ctx context.Context, c *client.Client, output string, count int) error {
	seen := 0
	enc := json.NewEncoder(m.Stdout)
	enc.SetEscapeHTML(false)
	print := func(e monitor.Event) error {
		if output == "json" {
			if err := enc.Encode(e); err != nil {
				return err
			}
		} else {
			line := fmt.Sprintf("%s  %-16s %s", e.Time.UTC().Format(time.RFC3339), e.Type, e.Resource)
			if e.Version > 0 {
				line += fmt.Sprintf(" v%d", e.Version)
			}
			if e.Actor != "" {
				line += " by " + e.Actor
			}
			if e.Reason != "" {
				line += " (" + e.Reason + ")"
			}
			fmt.Fprintln(m.Stdout, line)
		}
		seen++
		if count > 0 && seen >= count {
			return errEnough
		}
		return nil
	}
	for {
		err := c.StreamEvents(ctx, print)
		switch {
		case errors.Is(err, errEnough):
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, client.ErrUnreachable), errors.Is(err, client.ErrStreamEnded):
			// Dropped (slow, restarted server): say so and resubscribe.
			fmt.Fprintf(m.Stderr, "event stream interrupted (%v); reconnecting\n", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
		default:
			return cliError(err)
		}
	}
}
