package manifest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for a person: each finding on a line, then a
// summary line.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tokenward check: project %s, environments %s (%s)\n", r.Project, strings.Join(r.Environments, ", "), r.File)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.subject(), f.Class, f.Message)
	}
	tw.Flush()
	fmt.Fprintf(&b, "%d checks: %d %s, %d %s\n", len(r.Targets), r.Errors(), plural(r.Errors(), "error"), r.Warnings(), plural(r.Warnings(), "warning"))
	_, err := io.WriteString(w, b.String())
	return err
}

func (f Finding) subject() string {
	switch {
	case f.Secret != "":
		return f.Env + "/" + f.Secret
	case f.Env != "":
		return f.Env
	}
	return "token"
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// jsonReport is the JSON form of a report: the report with a summary.
type jsonReport struct {
	Report
	Summary jsonSummary `json:"summary"`
}

type jsonSummary struct {
	Checks   int  `json:"checks"`
	Errors   int  `json:"errors"`
	Warnings int  `json:"warnings"`
	OK       bool `json:"ok"`
}

// WriteJSON writes the report as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	out := jsonReport{Report: r, Summary: jsonSummary{Checks: len(r.Targets), Errors: r.Errors(), Warnings: r.Warnings(), OK: r.Errors() == 0}}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// JUnit XML, in the shape Jenkins, GitLab and the GitHub test-report
// actions read.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	ClassName string         `xml:"classname,attr"`
	File      string         `xml:"file,attr,omitempty"`
	Line      int            `xml:"line,attr,omitempty"`
	Failures  []junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a test suite per environment
// with a test case per declared secret, and a suite for the token's grants.
// Every finding, error or warning, is a failure of its case; the failure's
// type says "error: class" or "warning: class".
func (r Report) WriteJUnit(w io.Writer) error {
	ts := r.CheckedAt.UTC().Format(time.RFC3339)
	out := junitSuites{Name: "tokenward check " + r.Project}
	failure := func(f Finding) junitFailure {
		return junitFailure{Message: f.Message, Type: string(f.Severity) + ": " + string(f.Class), Text: f.Message}
	}
	for _, env := range r.Environments {
		suite := junitSuite{Name: r.Project + "/" + env, Timestamp: ts}
		for _, t := range r.Targets {
			if t.Env != env {
				continue
			}
			c := junitCase{Name: t.Secret, ClassName: "tokenward." + r.Project + "." + env, File: r.File, Line: t.Line}
			for _, f := range r.Findings {
				if f.Secret == t.Secret && f.Env == env {
					c.Failures = append(c.Failures, failure(f))
				}
			}
			suite.add(c)
		}
		// An unknown --env has no secrets to check: it is a case of its own.
		for _, f := range r.Findings {
			if f.Secret == "" && f.Env == env {
				suite.add(junitCase{Name: "environment", ClassName: "tokenward." + r.Project + "." + env, File: r.File, Line: f.Line, Failures: []junitFailure{failure(f)}})
			}
		}
		out.add(suite)
	}
	grants := junitCase{Name: "least privilege", ClassName: "tokenward." + r.Project + ".token", File: r.File}
	for _, f := range r.Findings {
		if f.Class == ClassExcessGrant {
			grants.Failures = append(grants.Failures, failure(f))
		}
	}
	token := junitSuite{Name: r.Project + " token", Timestamp: ts}
	token.add(grants)
	out.add(token)

	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *junitSuite) add(c junitCase) {
	s.Cases = append(s.Cases, c)
	s.Tests++
	if len(c.Failures) > 0 {
		s.Failures++
	}
}

func (s *junitSuites) add(suite junitSuite) {
	s.Suites = append(s.Suites, suite)
	s.Tests += suite.Tests
	s.Failures += suite.Failures
}
