package console

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/rotate"
)

// horizonDays is how far ahead the expiry timeline looks.
const horizonDays = 90

// maxListed bounds the overview's lists; the counts say how many more.
const maxListed = 20

type overviewPage struct {
	Projects, ActiveTokens, JITTokens int
	Expiring                          []expiring
	ExpiryChart, AccessChart          *barChart
	AccessTotal                       int
	InFlight, Failed                  int
	Overdue                           []monitor.OverdueItem
	Stale                             []monitor.StaleToken
	OpenAnomalies                     int
	MoreExpiring, MoreStale           int // beyond the maxListed shown
	// Unavailable names the parts this token may not read, with why.
	Unavailable []string
}

func (p *overviewPage) title() string { return "Overview" }

// expiring is a token or secret that expires within the horizon.
type expiring struct {
	Kind, Name, Link string
	At               time.Time
	InDays           int
}

// overview gathers what the token may see; a part it may not read is
// named, not fatal.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &overviewPage{}
	now := c.Now().UTC()
	horizon := now.Add(horizonDays * 24 * time.Hour)
	var authErr error
	get := func(name, target string, out any) bool {
		err := c.call(r, s.token, "GET", target, nil, out)
		if unauthorized(err) {
			authErr = err
		}
		if err != nil {
			p.Unavailable = append(p.Unavailable, name+": "+errText(err))
		}
		return err == nil
	}
	var projects api.ProjectList
	if get("projects", path("projects"), &projects) {
		p.Projects = len(projects.Projects)
	}
	var tokens api.TokenList
	get("tokens", path("tokens"), &tokens)
	for _, t := range tokens.Tokens {
		if !t.Active(now) {
			continue
		}
		p.ActiveTokens++
		if t.Kind == tokenward.TokenJIT {
			p.JITTokens++
		}
		if !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(horizon) {
			p.Expiring = append(p.Expiring, expiring{Kind: "token", Name: t.Name, Link: Prefix + "/tokens/" + t.ID, At: t.ExpiresAt})
		}
	}
	var report monitor.Report
	if get("hygiene report", path("report")+"?expiry_days="+strconv.Itoa(horizonDays), &report) {
		for _, e := range report.Expiring {
			if e.Kind == "secret" && e.ExpiresAt.Before(horizon) {
				p.Expiring = append(p.Expiring, expiring{Kind: "secret", Name: e.ID, Link: Prefix + "/projects/" + e.ID, At: e.ExpiresAt})
			}
		}
		p.Overdue, p.Stale = report.OverdueRotations, report.StaleTokens
		p.MoreStale = max(0, len(p.Stale)-maxListed)
		p.Stale = p.Stale[:min(len(p.Stale), maxListed)]
	}
	weeks := make([]int, (horizonDays+6)/7)
	labels := make([]string, len(weeks))
	for i := range labels {
		labels[i] = "week of " + now.Add(time.Duration(i)*7*24*time.Hour).Format("Jan 2")
	}
	for i := range p.Expiring {
		e := &p.Expiring[i]
		e.InDays = int(e.At.Sub(now).Hours() / 24)
		wk := max(0, e.InDays/7)
		weeks[min(wk, len(weeks)-1)]++
	}
	sortExpiring(p.Expiring)
	p.MoreExpiring = max(0, len(p.Expiring)-maxListed)
	p.Expiring = p.Expiring[:min(len(p.Expiring), maxListed)]
	p.ExpiryChart = newBarChart("Expirations per week over the next 90 days", weeks, labels, 2)

	var usage api.TokenUsages[monitor.TokenUsage]
	if get("access volume", path("usage", "tokens"), &usage) {
		days := make([]int, 30)
		dayLabels := make([]string, 30)
		first := now.Truncate(24*time.Hour).AddDate(0, 0, -29)
		for i := range dayLabels {
			dayLabels[i] = first.AddDate(0, 0, i).Format("Jan 2")
		}
		for _, u := range usage.Tokens {
			for _, d := range u.Daily {
				at, err := time.Parse("2006-01-02", d.Day)
				if err != nil {
					continue
				}
				if i := int(at.Sub(first).Hours() / 24); i >= 0 && i < len(days) {
					days[i] += int(d.Count)
					p.AccessTotal += int(d.Count)
				}
			}
		}
		p.AccessChart = newBarChart("Requests per day over the last 30 days", days, dayLabels, 5)
	}
	var status api.RotationStatusResponse[*rotate.Rotation]
	if get("rotation status", path("rotation", "status"), &status) {
		p.InFlight, p.Failed = len(status.InFlight), len(status.Failed)
	}
	var anomalies api.AnomalyList[*monitor.Record]
	if get("anomalies", path("anomalies"), &anomalies) {
		p.OpenAnomalies = len(anomalies.Anomalies)
	}
	if authErr != nil {
		return authErr
	}
	c.render(w, r, http.StatusOK, "overview", s, p)
	return nil
}

func sortExpiring(list []expiring) {
	slices.SortStableFunc(list, func(a, b expiring) int { return a.At.Compare(b.At) })
}
