package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/monitor"
)

// Usage columns of `token list` and `secret list`. The JSON forms keep
// every field they had and add "usage"; servers without monitoring (or an
// older server) leave it out.

// tokenWithUsage is a token as `token list -o json` prints it.
type tokenWithUsage struct {
	*tokenward.Token
	Usage *monitor.TokenUsage `json:"usage,omitempty"`
}

// secretWithUsage is a secret as `secret list -o json` prints it.
type secretWithUsage struct {
	*tokenward.Secret
	Usage *monitor.SecretUsage `json:"usage,omitempty"`
}

// recentCount sums the daily counts of the last days days before now.
func recentCount(daily []monitor.DayCount, now time.Time, days int) int {
	from := now.UTC().AddDate(0, 0, -days+1).Format(time.DateOnly)
	n := 0
	for _, d := range daily {
		if d.Day >= from {
			n += int(d.Count)
		}
	}
	return n
}

func (m *Main) printTokensWithUsage(ctx context.Context, c *client.Client, output string, ts []*tokenward.Token) error {
	usage, err := c.TokenUsage(ctx)
	if err != nil {
		usage = nil // monitoring off or not allowed: list without usage
	}
	if output == "json" {
		out := make([]tokenWithUsage, len(ts))
		for i, t := range ts {
			out[i].Token = t
			if u, ok := usage[t.ID]; ok {
				out[i].Usage = &u
			}
		}
		return writeJSON(m.Stdout, out)
	}
	now := timeNow()
	rows := make([][]string, len(ts))
	for i, t := range ts {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked"
		case !t.Active(now):
			state = "expired"
		}
		lastIP, req7 := orDash(t.LastUsedIP), "-"
		if u, ok := usage[t.ID]; ok {
			if u.LastIP != "" {
				lastIP = u.LastIP
			}
			req7 = strconv.Itoa(recentCount(u.Daily, now, 7))
		}
		rows[i] = []string{t.ID, t.Name, string(t.Kind), strings.Join(t.Grants.Strings(), " "), fmtTime(t.CreatedAt), orNever(fmtTime(t.ExpiresAt)), fmtTime(t.LastUsedAt), state, lastIP, req7}
	}
	return table(m.Stdout, []string{"ID", "NAME", "KIND", "GRANTS", "CREATED", "EXPIRES", "LAST USED", "STATE", "LAST IP", "REQ 7D"}, rows)
}

func (m *Main) printSecretsWithUsage(ctx context.Context, c *client.Client, output, project, env string, list []*tokenward.Secret) error {
	usage, err := c.SecretUsage(ctx, project, env)
	if err != nil {
		usage = nil
	}
	if output == "json" {
		out := make([]secretWithUsage, len(list))
		for i, s := range list {
			out[i].Secret = s
			if u, ok := usage[s.Name]; ok {
				out[i].Usage = &u
			}
		}
		return writeJSON(m.Stdout, out)
	}
	now := timeNow()
	rows := make([][]string, len(list))
	for i, s := range list {
		last, lastIP, reads7 := "-", "-", "-"
		if u, ok := usage[s.Name]; ok {
			last, lastIP, reads7 = fmtTime(u.LastAt), orDash(u.LastIP), strconv.Itoa(recentCount(u.Daily, now, 7))
		}
		rows[i] = []string{s.Name, strconv.Itoa(s.Version), orDash(s.Owner), fmtDate(s.ExpiresAt), fmtTime(s.UpdatedAt), orDash(strings.Join(s.Tags, ",")), last, lastIP, reads7}
	}
	return table(m.Stdout, []string{"NAME", "VERSION", "OWNER", "EXPIRES", "UPDATED", "TAGS", "LAST READ", "LAST IP", "READS 7D"}, rows)
}
