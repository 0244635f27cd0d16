package console

import (
	"net/http"
	"strings"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/rotate"
)

type projectsPage struct {
	Projects []*tokenward.Project
	Pager    pager
}

func (p *projectsPage) title() string { return "Projects" }

func (c *Console) projects(w http.ResponseWriter, r *http.Request, s *session) error {
	var list api.ProjectList
	if err := c.call(r, s.token, "GET", path("projects"), nil, &list); err != nil {
		return err
	}
	p := &projectsPage{}
	p.Projects, p.Pager = paginate(r, list.Projects, c.PageSize)
	c.render(w, r, http.StatusOK, "projects", s, p)
	return nil
}

type projectPage struct{ Project *tokenward.Project }

func (p *projectPage) title() string { return "Project " + p.Project.Name }

func (c *Console) projectData(r *http.Request, s *session) (*projectPage, error) {
	var p tokenward.Project
	err := c.call(r, s.token, "GET", path("projects", r.PathValue("project")), nil, &p)
	return &projectPage{Project: &p}, err
}

type envPage struct {
	Project, Env string
	Filter       string
	Secrets      []*tokenward.Secret
	Pager        pager
}

func (p *envPage) title() string { return p.Project + "/" + p.Env }

func (c *Console) env(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &envPage{Project: r.PathValue("project"), Env: r.PathValue("env"), Filter: r.URL.Query().Get("q")}
	var list api.SecretList
	if err := c.call(r, s.token, "GET", path("secrets", p.Project, p.Env), nil, &list); err != nil {
		return err
	}
	secrets := list.Secrets
	if p.Filter != "" {
		secrets = nil
		q := strings.ToLower(p.Filter)
		for _, sec := range list.Secrets {
			if strings.Contains(strings.ToLower(sec.Name+" "+sec.Owner+" "+strings.Join(sec.Tags, " ")), q) {
				secrets = append(secrets, sec)
			}
		}
	}
	p.Secrets, p.Pager = paginate(r, secrets, c.PageSize)
	c.render(w, r, http.StatusOK, "env", s, p)
	return nil
}

// secretPage is a secret's metadata, versions, rotation and last access;
// Value is set only in the answer to a reveal.
type secretPage struct {
	Secret    *tokenward.Secret
	Versions  []*tokenward.SecretVersion
	Policy    *api.RotationPolicy
	Rotations []*rotate.Rotation
	Usage     *monitor.SecretUsage
	// Labels are the versions' labels: CURRENT from the secret, PENDING
	// and PREVIOUS from its rotations (no API route lists labels).
	Labels map[int]string
	// Unavailable names the parts this token may not read, with why.
	Unavailable []string
	Revealed    bool
	Value       string
	ValueOf     int
}

func (p *secretPage) title() string { return p.Secret.Path() }

func (c *Console) secretData(r *http.Request, s *session) (*secretPage, error) {
	pr, e, n := r.PathValue("project"), r.PathValue("env"), r.PathValue("name")
	var list api.SecretList
	if err := c.call(r, s.token, "GET", path("secrets", pr, e), nil, &list); err != nil {
		return nil, err
	}
	p := &secretPage{}
	for _, sec := range list.Secrets {
		if sec.Name == n {
			p.Secret = sec
		}
	}
	if p.Secret == nil {
		return nil, &apiError{Status: http.StatusNotFound, Code: tokenward.ENOTFOUND, Message: "secret " + pr + "/" + e + "/" + n + " not found"}
	}
	var vs api.SecretVersions
	var policy api.RotationPolicy
	var hist api.RotationHistory[*rotate.Rotation]
	var usage api.SecretUsages[monitor.SecretUsage]
	for _, part := range []struct {
		name, target string
		out          any
		ok           func()
	}{
		{"versions", path("secrets", pr, e, n, "versions"), &vs, func() { p.Versions = vs.Versions }},
		{"rotation policy", path("rotation", "policies", pr, e, n), &policy, func() { p.Policy = &policy }},
		{"rotation history", path("rotation", "history", pr, e, n), &hist, func() { p.Rotations = hist.Rotations }},
		{"last access", path("usage", "secrets", pr, e), &usage, func() {
			if u, ok := usage.Secrets[n]; ok {
				p.Usage = &u
			}
		}},
	} {
		err := c.call(r, s.token, "GET", part.target, nil, part.out)
		switch {
		case err == nil:
			part.ok()
		case unauthorized(err):
			return nil, err
		default:
			if ae, ok := err.(*apiError); ok && ae.Status == http.StatusNotFound && part.name == "rotation policy" {
				continue // no policy: shown as none
			}
			p.Unavailable = append(p.Unavailable, part.name+": "+errText(err))
		}
	}
	p.Labels = versionLabels(p.Secret.Version, p.Rotations)
	return p, nil
}

// versionLabels names the labelled versions: CURRENT, PENDING while a
// rotation is before its finish step, PREVIOUS while one is in its grace
// period (the revoke step waits for its end).
func versionLabels(current int, rotations []*rotate.Rotation) map[int]string {
	labels := map[int]string{current: tokenward.LabelCurrent}
	for _, rot := range rotations {
		switch rot.Step {
		case rotate.StepCreate, rotate.StepSet, rotate.StepTest:
			if rot.PendingVersion > 0 && labels[rot.PendingVersion] == "" {
				labels[rot.PendingVersion] = tokenward.LabelPending
			}
		case rotate.StepRevoke:
			if rot.CurrentVersion > 0 && labels[rot.CurrentVersion] == "" {
				labels[rot.CurrentVersion] = tokenward.LabelPrevious
			}
		}
	}
	return labels
}

func errText(err error) string {
	if ae, ok := err.(*apiError); ok {
		return ae.Message
	}
	return "not available"
}

// reveal shows a secret's current value in this answer only: the API's
// secret.read (the read grant, audited), a POST with the CSRF token, and
// the console's Cache-Control: no-store on every page.
func (c *Console) reveal(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.secretData(r, s)
	if err != nil {
		return err
	}
	var sr api.SecretResponse
	if err := c.call(r, s.token, "GET", path("secrets", p.Secret.Project, p.Secret.Env, p.Secret.Name), nil, &sr); err != nil {
		return err
	}
	p.Revealed, p.Value, p.ValueOf = true, sr.Value, sr.ValueVersion
	c.render(w, r, http.StatusOK, "secret", s, p)
	return nil
}
