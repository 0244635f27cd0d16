package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
)

var argLease = argument{"ID", "lease_…", 0}

func (m *Main) newLeaseCommand() *cobra.Command {
	return group("lease", "List, renew and revoke the leases of dynamic sources (docs/dynamic.md)",
		m.newLeaseListCommand(), m.newLeaseShowCommand(), m.newLeaseRenewCommand(), m.newLeaseRevokeCommand())
}

func (x *call) printLeases(ls []*tokenward.Lease) error {
	rows := make([][]string, len(ls))
	for i, l := range ls {
		rows[i] = []string{l.ID, l.Source(), l.Role, string(l.State), l.TokenID, l.Job, l.ExpiresAt.Format(time.RFC3339), l.Reason}
	}
	return x.list(ls, []string{"LEASE", "SOURCE", "ROLE", "STATE", "TOKEN", "JOB", "EXPIRES", "REASON"}, rows)
}

func (m *Main) newLeaseListCommand() *cobra.Command {
	var f tokenward.LeaseFilter
	var all bool
	cmd := m.clientCommand(&cobra.Command{
		Use: "list [--prefix PROJECT/ENV/NAME] [--token ID] [--all]", Short: "List the leases you may manage (your own, or under your revoke grant)",
		Example: "  tokenward lease list --prefix acme/prod/db", Args: noArgs,
	}, true, func(x *call) error {
		f.Live = !all
		ls, err := x.c.Leases(x.ctx, f)
		if err != nil {
			return cliError(err)
		}
		return x.printLeases(ls)
	})
	cmd.Flags().StringVar(&f.Prefix, "prefix", "", "leases whose source path starts with these whole segments (acme/prod/db is not acme/prod/db2)")
	cmd.Flags().StringVar(&f.TokenID, "token", "", "leases of this token id")
	cmd.Flags().BoolVar(&all, "all", false, "revoked leases too")
	return cmd
}

func (m *Main) newLeaseShowCommand() *cobra.Command {
	return m.clientCommand(&cobra.Command{
		Use: "show ID", Short: "Show one lease", Example: "  tokenward lease show lease_…", Args: exactArgs(argLease),
	}, true, func(x *call) error {
		l, err := x.c.GetLease(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		kv := []string{"lease", l.ID, "source", l.Source(), "role", l.Role, "state", string(l.State), "token", l.TokenID, "job", l.Job,
			"created", l.CreatedAt.Format(time.RFC3339), "expires", l.ExpiresAt.Format(time.RFC3339), "max expires", l.MaxExpiresAt.Format(time.RFC3339)}
		if !l.RevokedAt.IsZero() {
			kv = append(kv, "revoked", l.RevokedAt.Format(time.RFC3339))
		}
		if l.Reason != "" {
			kv = append(kv, "reason", l.Reason)
		}
		if l.Error != "" {
			kv = append(kv, "attempts", fmt.Sprint(l.Attempts), "last error", l.Error, "next attempt", l.NextAttemptAt.Format(time.RFC3339))
		}
		return x.detail(l, kv...)
	})
}

func (m *Main) newLeaseRenewCommand() *cobra.Command {
	var increment string
	cmd := m.clientCommand(&cobra.Command{
		Use: "renew ID [--increment 15m]", Short: "Extend a lease from now (capped at its max ttl)",
		Example: "  tokenward lease renew lease_… --increment 30m", Args: exactArgs(argLease),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if increment != "" {
				if d, err := time.ParseDuration(increment); err != nil || d <= 0 {
					return usageError("--increment: want a positive duration like 15m")
				}
			}
			return nil
		},
	}, true, func(x *call) error {
		l, err := x.c.RenewLease(x.ctx, x.args[0], increment)
		if err != nil {
			return cliError(err)
		}
		for _, w := range l.Warnings {
			fmt.Fprintln(x.Stderr, "warning:", w)
		}
		return x.done(l, "Renewed lease %s: expires at %s (at most %s).", l.ID, l.ExpiresAt.Format(time.RFC3339), l.MaxExpiresAt.Format(time.RFC3339))
	})
	cmd.Flags().StringVar(&increment, "increment", "", "new lifetime from now (default: the source's ttl)")
	return cmd
}

func (m *Main) newLeaseRevokeCommand() *cobra.Command {
	var prefix string
	cmd := m.clientCommand(&cobra.Command{
		Use:     "revoke (ID | --prefix PROJECT/ENV[/NAME])",
		Short:   "Revoke a lease, or every lease under a prefix (an incident): sessions ended, role dropped",
		Example: "  tokenward lease revoke lease_…\n  tokenward lease revoke --prefix acme/prod/db",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case prefix == "" && len(args) == 0:
				return usageError("give a lease ID or --prefix")
			case prefix != "" && len(args) > 0:
				return usageError("give a lease ID or --prefix, not both")
			case len(args) > 1:
				return unexpectedArg(cmd, args[1])
			}
			return nil
		},
	}, true, func(x *call) error {
		if prefix != "" {
			ls, err := x.c.RevokeLeases(x.ctx, prefix)
			if err != nil {
				return cliError(err)
			}
			if x.json() {
				return x.printLeases(ls)
			}
			revoked := tokenward.RevokedLeases(ls)
			return x.done(ls, "Revoked %d leases under %s (%d still being revoked: retried until the database answers).", revoked, prefix, len(ls)-revoked)
		}
		l, err := x.c.RevokeLease(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		if l.State != tokenward.LeaseRevoked {
			return x.done(l, "Lease %s is being revoked (%s); the server retries until it succeeds.", l.ID, l.Error)
		}
		return x.done(l, "Revoked lease %s (role %s).", l.ID, l.Role)
	})
	cmd.Flags().StringVar(&prefix, "prefix", "", "revoke every live lease whose source path starts with this (that you may manage)")
	return cmd
}

// dynamicRef is a --dynamic flag of run and export: [VAR=]PROJECT/ENV/NAME,
// the variable named after the source by default.
type dynamicRef struct{ variable, source string }

func parseDynamicRefs(ss []string) ([]dynamicRef, error) {
	var out []dynamicRef
	for _, s := range ss {
		v, src, ok := strings.Cut(s, "=")
		if !ok {
			src = v
		}
		parts, err := splitPath(src, 3)
		if err != nil {
			return nil, usageError("--dynamic: want [VAR=]PROJECT/ENV/NAME, e.g. DATABASE_URL=acme/prod/db")
		}
		if !ok {
			v = parts[2]
		}
		if err := tokenward.ValidateSecretName(v); err != nil {
			return nil, usageError("--dynamic %s: %s", tokenward.Printable(s), tokenward.ErrorMessage(err))
		}
		out = append(out, dynamicRef{v, src})
	}
	return out, nil
}

// leaseAll makes a credential of each source, adding it to secrets (so
// it is masked like every value), and says on stderr which lease it is.
// When one fails, those made already are revoked.
func leaseAll(ctx context.Context, c *client.Client, refs []dynamicRef, secrets map[string]string, stderr io.Writer) ([]*tokenward.Lease, error) {
	warn := warner(stderr)
	var leases []*tokenward.Lease
	for _, r := range refs {
		lr, err := c.Lease(ctx, r.source)
		if err != nil {
			revokeAll(c, leases, warn)
			return nil, fmt.Errorf("lease %s: %w", r.source, err)
		}
		secrets[r.variable] = lr.Value
		leases = append(leases, lr.Lease)
		fmt.Fprintf(stderr, "tokenward: %s: lease %s of %s (role %s) until %s\n", r.variable, lr.Lease.ID, r.source, lr.Lease.Role, lr.Lease.ExpiresAt.Format(time.RFC3339))
	}
	return leases, nil
}

// revokeAll revokes leases, on a context of its own (the command's may
// have ended with the signal that stopped the child).
func revokeAll(c *client.Client, leases []*tokenward.Lease, warn func(string)) {
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range leases {
		if _, err := c.RevokeLease(ctx, l.ID); err != nil {
			warn(fmt.Sprintf("revoke lease %s: %s (it expires at %s)", l.ID, cliError(err), l.ExpiresAt.Format(time.RFC3339)))
		}
	}
}

// printLease is secret get of a dynamic source: a new credential, its
// lease named on stderr. done is false when there is no such source.
func (x *call) printLease(p []string) (done bool, err error) {
	lr, err := x.c.Lease(x.ctx, strings.Join(p, "/"))
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return true, cliError(err)
	}
	if x.json() {
		return true, writeJSON(x.Stdout, lr)
	}
	fmt.Fprintf(x.Stderr, "tokenward: lease %s (role %s) until %s; revoke with: tokenward lease revoke %s\n",
		lr.Lease.ID, lr.Lease.Role, lr.Lease.ExpiresAt.Format(time.RFC3339), lr.Lease.ID)
	io.WriteString(x.Stdout, lr.Value)
	if isTerminal(x.Stdout) {
		io.WriteString(x.Stdout, "\n")
	}
	return true, nil
}
