package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
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

// printTokensWithUsage is token list: tokenRow plus the last IP and the
// requests of the last 7 days.
func (x *call) printTokensWithUsage(ts []*tokenward.Token) error {
	usage, err := x.c.TokenUsage(x.ctx)
	if err != nil {
		usage = nil // monitoring off or not allowed: list without usage
	}
	now := timeNow()
	out := make([]tokenWithUsage, len(ts))
	rows := make([][]string, len(ts))
	for i, t := range ts {
		out[i].Token = t
		lastIP, req7 := orDash(t.LastUsedIP), "-"
		if u, ok := usage[t.ID]; ok {
			out[i].Usage = &u
			if u.LastIP != "" {
				lastIP = u.LastIP
			}
			req7 = strconv.Itoa(recentCount(u.Daily, now, 7))
		}
		rows[i] = append(tokenRow(t, now), lastIP, req7)
	}
	return x.list(out, slices.Concat(tokenHeader, []string{"LAST IP", "REQ 7D"}), rows)
}

// printSecretsWithUsage is secret list: metadata plus the last read, its
// IP and the reads of the last 7 days.
func (x *call) printSecretsWithUsage(project, env string, list []*tokenward.Secret) error {
	usage, err := x.c.SecretUsage(x.ctx, project, env)
	if err != nil {
		usage = nil
	}
	now := timeNow()
	out := make([]secretWithUsage, len(list))
	rows := make([][]string, len(list))
	for i, s := range list {
		out[i].Secret = s
		last, lastIP, reads7 := "-", "-", "-"
		if u, ok := usage[s.Name]; ok {
			out[i].Usage = &u
			last, lastIP, reads7 = fmtTime(u.LastAt), orDash(u.LastIP), strconv.Itoa(recentCount(u.Daily, now, 7))
		}
		rows[i] = []string{s.Name, strconv.Itoa(s.Version), orDash(s.Owner), fmtDate(s.ExpiresAt), fmtTime(s.UpdatedAt), orDash(strings.Join(s.Tags, ",")), last, lastIP, reads7}
	}
	return x.list(out, []string{"NAME", "VERSION", "OWNER", "EXPIRES", "UPDATED", "TAGS", "LAST READ", "LAST IP", "READS 7D"}, rows)
}
