package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
)

// auditKeys are the audit page's filter keys; each is the API's query
// parameter of the same name.
var auditKeys = []string{"token", "action", "resource", "outcome", "since", "until"}

type auditPage struct {
	Filter, FilterError string
	SearchError         string
	Keys                []string
	Entries             []*tokenward.AuditEntry
	Verified            *auditVerify
	VerifyError         string
	Newer, Older        string
	VerifyURL           string
}

func (p *auditPage) title() string { return "Audit" }

// auditVerify is what the console shows of GET /v1/audit/verify.
type auditVerify struct {
	OK          bool             `json:"ok"`
	KeyID       string           `json:"key_id"`
	Entries     int64            `json:"entries"`
	Checkpoints int              `json:"checkpoints"`
	LastSeq     int64            `json:"last_seq"`
	Problems    []map[string]any `json:"problems"`
}

// audit searches the trail newest first, a page at a time: "older" asks for
// the entries before the last one shown (before=its seq). A seq, not the
// last entry's time: entries can share a time (a coarse clock), and those
// left off a page would never be shown.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &auditPage{Filter: r.URL.Query().Get("q"), Keys: auditKeys}
	f, err := parseFilter(p.Filter, auditKeys)
	if err != nil {
		p.FilterError = err.Error()
		f = filter{}
	}
	q := url.Values{"order": {"newest"}, "limit": {strconv.Itoa(c.PageSize)}}
	for k, v := range f {
		q.Set(k, v)
	}
	// until= is what the Older link carried before before= did.
	for _, k := range []string{"before", "until"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	// ?seq=N shows entry N alone (an anomaly's evidence).
	if seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64); err == nil && seq > 0 {
		q = url.Values{"after": {strconv.FormatInt(seq-1, 10)}, "limit": {"1"}}
		p.Newer = Prefix + "/audit"
	}
	var res api.AuditEntriesResponse
	err = c.call(r, s.token, "GET", path("audit", "entries")+"?"+q.Encode(), nil, &res)
	if unauthorized(err) {
		return err
	}
	if err != nil {
		p.SearchError = errText(err)
	}
	p.Entries = res.Entries
	if n := len(p.Entries); n == c.PageSize {
		p.Older = withQuery(r, "before", strconv.FormatInt(p.Entries[n-1].Seq, 10))
	}
	if r.URL.Query().Get("before") != "" || r.URL.Query().Get("until") != "" {
		p.Newer = Prefix + "/audit?" + url.Values{"q": {p.Filter}}.Encode()
	}
	p.VerifyURL = withQuery(r, "verify", "1")
	if r.URL.Query().Get("verify") != "1" {
		c.render(w, r, http.StatusOK, "audit", s, p)
		return nil
	}
	// Verification reads the whole chain: on request, not on every view.
	var v auditVerify
	if err := c.call(r, s.token, "GET", path("audit", "verify"), nil, &v); err != nil {
		if unauthorized(err) {
			return err
		}
		p.VerifyError = errText(err)
	} else {
		p.Verified = &v
	}
	c.render(w, r, http.StatusOK, "audit", s, p)
	return nil
}
