package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/client"
)

func (m *Main) newAuditCommand() *cobra.Command {
	return group("audit", "Verify, search, tail and export the tamper-evident audit trail",
		m.newAuditVerifyCommand(), m.newAuditSearchCommand(), m.newAuditTailCommand(), m.newAuditExportCommand(), m.newAuditKeyCommand())
}

func (m *Main) newAuditVerifyCommand() *cobra.Command {
	var cf clientFlags
	var from, keyFile string
	cmd := &cobra.Command{
		Use:   "verify [--from FILE] [--key FILE]",
		Short: "Check the hash chain and signed checkpoints; exit 1 naming the first bad entry",
		Long: `Verify checks the audit trail's hash chain and its checkpoints signed by the install's
Ed25519 key, and names the first entry that was modified, deleted, inserted or reordered.

Without --from it downloads the server's export and verifies it here. --from FILE verifies an
export made by 'tokenward audit export' offline. --key FILE is the PEM public key (from
'GET /v1/audit/key', kept out of band); without it the server's key is used, which trusts the
server.`,
		Example: `  tokenward audit verify
  tokenward audit export -o trail.jsonl && tokenward audit key > audit.pem
  tokenward audit verify --from trail.jsonl --key audit.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var pemKey []byte
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				pemKey = b
			}
			var c *client.Client
			if from == "" || pemKey == nil {
				var err error
				if c, err = m.client(&cf); err != nil {
					return err
				}
			}
			var data *audit.ExportData
			if from != "" {
				f, err := os.Open(from)
				if err != nil {
					return err
				}
				defer f.Close()
				if data, err = audit.ReadExport(f); err != nil {
					return fmt.Errorf("%s: %s", from, tokenward.ErrorMessage(err))
				}
			} else {
				var buf bytes.Buffer
				if err := c.ExportAudit(ctx, &buf); err != nil {
					return cliError(err)
				}
				var err error
				if data, err = audit.ReadExport(&buf); err != nil {
					return fmt.Errorf("server export: %s", tokenward.ErrorMessage(err))
				}
			}
			if pemKey == nil {
				var err error
				if pemKey, err = c.AuditKey(ctx); err != nil {
					return cliError(err)
				}
			}
			pub, err := audit.ParsePublicKey(pemKey)
			if err != nil {
				return fmt.Errorf("public key: %s", tokenward.ErrorMessage(err))
			}
			rep, err := audit.Verify(data.All(), data.Checkpoints, pub)
			if err != nil {
				return err
			}
			if rep.Problems == nil {
				rep.Problems = []audit.Problem{}
			}
			if cf.output == "json" {
				if err := writeJSON(m.Stdout, map[string]any{"ok": rep.OK(), "key_id": audit.KeyID(pub), "report": rep}); err != nil {
					return err
				}
			} else if rep.OK() {
				fmt.Fprintf(m.Stdout, "audit trail OK: %d entries, last seq %d, last signed checkpoint at seq %d (key %s)\n",
					rep.Entries, rep.LastSeq, rep.LastCheckpointSeq, audit.KeyID(pub))
				if rep.PrunedThrough > 0 {
					fmt.Fprintf(m.Stdout, "entries 1..%d were deleted by the audit retention, as entry %d records\n", rep.PrunedThrough, rep.PruneRecordSeq)
				}
			}
			if !rep.OK() {
				p := rep.First()
				return &exitError{code: 1, err: fmt.Errorf("audit trail BROKEN: first bad entry: %s at seq %d: %s", p.Kind, p.Seq, p.Detail)}
			}
			return nil
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&from, "from", "", "verify this export file instead of the server's trail")
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM public key that signs the checkpoints (default: ask the server)")
	return cmd
}

// parseSince accepts a duration back from now (1h, 7d), a date or RFC 3339.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want a duration back from now (1h, 7d), YYYY-MM-DD or RFC 3339", tokenward.Printable(s))
}

// auditQueryFlags are the filters search and tail share.
type auditQueryFlags struct {
	q            audit.Query
	since, until string
}

func (f *auditQueryFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.q.Token, "token", "", "token id or name")
	fl.StringVar(&f.q.Resource, "resource", "", "resource glob, e.g. 'payments/prod/*' or 'token:*'")
	fl.StringVar(&f.q.Action, "action", "", "action, or prefix glob such as 'secret.*'")
	fl.StringVar(&f.q.Outcome, "outcome", "", "allowed, denied or error")
	fl.StringVar(&f.since, "since", "", "entries since: a duration back (1h, 7d), a date or RFC 3339")
	fl.StringVar(&f.until, "until", "", "entries before: a duration back, a date or RFC 3339")
}

func (f *auditQueryFlags) query() (audit.Query, error) {
	q := f.q
	now := time.Now()
	var err error
	if f.since != "" {
		if q.Since, err = parseSince(f.since, now); err != nil {
			return q, usageError("--since %v", err)
		}
	}
	if f.until != "" {
		if q.Until, err = parseSince(f.until, now); err != nil {
			return q, usageError("--until %v", err)
		}
	}
	if err := q.Validate(); err != nil {
		return q, usageError("%s", tokenward.ErrorMessage(err))
	}
	return q, nil
}

func (m *Main) newAuditSearchCommand() *cobra.Command {
	var qf auditQueryFlags
	var q audit.Query
	var limit int
	cmd := m.clientCommand(&cobra.Command{
		Use:     "search [--token T] [--resource GLOB] [--action A] [--outcome O] [--since 1h] [--until T]",
		Short:   "Search the audit trail, newest first",
		Example: "  tokenward audit search --resource 'payments/prod/*' --outcome denied --since 7d",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			if q, err = qf.query(); err != nil {
				return err
			}
			if limit < 1 || limit > audit.MaxQueryLimit {
				return usageError("--limit must be from 1 to %d", audit.MaxQueryLimit)
			}
			q.Limit, q.Newest = limit, true
			return nil
		},
	}, true, func(x *call) error {
		page, err := x.c.SearchAudit(x.ctx, q, 0)
		if err != nil {
			return cliError(err)
		}
		rows := make([][]string, len(page.Entries))
		for i, e := range page.Entries {
			rows[i] = auditRow(e)
		}
		return x.list(page.Entries, []string{"SEQ", "TIME", "TOKEN", "ACTION", "RESOURCE", "OUTCOME", "STATUS", "SOURCE"}, rows)
	})
	qf.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "most entries to show")
	cmd.Flags().Int64Var(&qf.q.Before, "before", 0, "entries with a seq below this (the last SEQ shown, to page back)")
	return cmd
}

func auditRow(e *tokenward.AuditEntry) []string {
	tok := e.TokenName
	if tok == "" {
		tok = e.TokenID
	}
	return []string{fmt.Sprint(e.Seq), e.Time.UTC().Format("2006-01-02 15:04:05"), orDash(tok), e.Action, orDash(e.Resource), e.Outcome, fmt.Sprint(e.Status), orDash(e.SourceIP)}
}

// tailWait is how long one tail poll waits on the server (under its
// 30-second bound and the client's timeout).
const tailWait = 25 * time.Second

func (m *Main) newAuditTailCommand() *cobra.Command {
	var qf auditQueryFlags
	var q audit.Query
	var follow bool
	var lines int
	cmd := m.clientCommand(&cobra.Command{
		Use:     "tail [-f] [-n 20]",
		Short:   "Show the latest audit entries; with -f, keep printing new ones",
		Example: "  tokenward audit tail -n 50\n  tokenward audit tail -f --action 'secret.*' -o json",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			if q, err = qf.query(); err != nil {
				return err
			}
			if lines < 0 || lines > audit.MaxQueryLimit {
				return usageError("-n must be from 0 to %d", audit.MaxQueryLimit)
			}
			return nil
		},
	}, true, func(x *call) error {
		var after int64
		if lines > 0 {
			lq := q
			lq.Limit, lq.Newest = lines, true
			page, err := x.c.SearchAudit(x.ctx, lq, 0)
			if err != nil {
				return cliError(err)
			}
			slices.Reverse(page.Entries)
			if err := x.printTail(page.Entries); err != nil {
				return err
			}
			if len(page.Entries) > 0 {
				after = page.Entries[len(page.Entries)-1].Seq
			}
			after = max(after, page.Next) // the newest seq the search looked at
		}
		if !follow {
			return nil
		}
		if after == 0 {
			// Nothing shown: start from the end of the trail, not its
			// start. A grant narrower than audit:*/*/* may not see the
			// last entry; the answer's next still names its seq.
			page, err := x.c.SearchAudit(x.ctx, audit.Query{Limit: 1, Newest: true}, 0)
			if err != nil {
				return cliError(err)
			}
			if len(page.Entries) > 0 {
				after = page.Entries[0].Seq
			}
			after = max(after, page.Next)
		}
		return x.follow(q, after)
	})
	qf.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", 20, "entries to show first")
	return cmd
}

func (x *call) follow(q audit.Query, after int64) error {
	for {
		fq := q
		fq.After, fq.Newest, fq.Limit = after, false, 0
		page, err := x.c.SearchAudit(x.ctx, fq, tailWait)
		if x.ctx.Err() != nil {
			return nil // interrupted: a normal end of -f
		}
		if err != nil {
			return cliError(err)
		}
		if err := x.printTail(page.Entries); err != nil {
			return err
		}
		after = max(after, page.Next)
	}
}

// printTail prints entries as they come: JSON lines for -o json, else one
// row each (no column alignment across polls).
func (x *call) printTail(es []*tokenward.AuditEntry) error {
	for _, e := range es {
		if x.json() {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			fmt.Fprintf(x.Stdout, "%s\n", b)
			continue
		}
		row := auditRow(e)
		for i := range row {
			row[i] = cellText(row[i]) // a resource is the client's text
		}
		fmt.Fprintln(x.Stdout, strings.Join(row, "  "))
	}
	if f, ok := x.Stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	return nil
}

func (m *Main) newAuditExportCommand() *cobra.Command {
	var output string
	cmd := m.clientCommand(&cobra.Command{
		Use:     "export [--output FILE]",
		Short:   "Download the whole trail with its signed checkpoints (JSON lines) for offline verify --from",
		Example: "  tokenward audit export -o trail.jsonl",
		Args:    noArgs,
	}, false, func(x *call) error {
		if output == "" || output == "-" {
			return cliError(x.c.ExportAudit(x.ctx, x.Stdout))
		}
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
			return err
		}
		if err := x.c.ExportAudit(x.ctx, f); err != nil {
			return cliError(err)
		}
		return f.Close()
	})
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE (mode 0600) instead of stdout")
	return cmd
}

func (m *Main) newAuditKeyCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use:     "key",
		Short:   "Print the PEM public key that signs the audit checkpoints (keep a copy for verify --key)",
		Example: "  tokenward audit key > audit.pem",
		Args:    noArgs,
	}, false, func(x *call) error {
		pem, err := x.c.AuditKey(x.ctx)
		if err != nil {
			return cliError(err)
		}
		_, err = x.Stdout.Write(pem)
		return err
	})
}
