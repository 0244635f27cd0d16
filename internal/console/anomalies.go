package console

import (
	"net/http"
	"net/url"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
)

type anomaliesPage struct {
	All       bool
	Anomalies []*monitor.Record
	Pager     pager
}

func (p *anomaliesPage) title() string { return "Anomalies" }

// anomalies lists the open anomalies (all with ?all=1), newest first, with
// their explanation and evidence (audit entries, linked).
func (c *Console) anomalies(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &anomaliesPage{All: r.URL.Query().Get("all") == "1"}
	q := url.Values{}
	if p.All {
		q.Set("all", "true")
	}
	var list api.AnomalyList[*monitor.Record]
	if err := c.call(r, s.token, "GET", path("anomalies")+"?"+q.Encode(), nil, &list); err != nil {
		return err
	}
	p.Anomalies, p.Pager = paginate(r, list.Anomalies, c.PageSize)
	c.render(w, r, http.StatusOK, "anomalies", s, p)
	return nil
}

// ack acknowledges an anomaly through the API (anomaly.ack, audited).
func (c *Console) ack(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r, s.token, "POST", path("anomalies", r.PathValue("id"), "ack"), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, Prefix+"/anomalies?done=acked", http.StatusSeeOther)
	return nil
}
