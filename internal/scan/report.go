package scan

import (
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Formats WriteReport accepts.
var Formats = []string{"text", "json", "sarif", "csv", "junit"}

// ReportInfo describes the scan for formats that carry it.
type ReportInfo struct {
	ToolVersion string
	Rules       []*Rule // for SARIF's rule list; may be nil
}

// WriteReport writes findings in format. Secrets appear redacted only.
func WriteReport(w io.Writer, format string, fs []Finding, info ReportInfo) error {
	switch format {
	case "text", "":
		return writeText(w, fs)
	case "json":
		return writeJSON(w, fs)
	case "sarif":
		return writeSARIF(w, fs, info)
	case "csv":
		return writeCSV(w, fs)
	case "junit":
		return writeJUnit(w, fs)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

func writeText(w io.Writer, fs []Finding) error {
	var b strings.Builder
	for _, f := range fs {
		// Paths, names and descriptions come from scanned content: no
		// control characters reach the terminal.
		fmt.Fprintf(&b, "%s:%d:%d: %s: %s", clean(f.Path), f.Line, f.Column, f.RuleID, clean(f.Redacted))
		if f.Confirmed {
			b.WriteString(" (confirmed)")
		}
		if f.Decoded != "" {
			fmt.Fprintf(&b, " (decoded %s)", f.Decoded)
		}
		if why := f.Why(); why != "" {
			fmt.Fprintf(&b, " [%s]", clean(why))
		}
		if f.ManagedSecret != "" {
			fmt.Fprintf(&b, " managed secret %s", clean(f.ManagedSecret))
		}
		if f.Description != "" && f.ManagedSecret == "" {
			fmt.Fprintf(&b, " — %s", clean(f.Description))
		}
		b.WriteByte('\n')
		if f.Commit != "" {
			fmt.Fprintf(&b, "    commit %s by %s <%s> on %s\n", shortCommit(f.Commit), clean(f.Author), clean(f.Email), f.Date.UTC().Format(time.RFC3339))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Why says what made a value a finding besides its rule: the name it was
// assigned to, its shape and its entropy ("" for managed secrets, which
// are matched exactly).
func (f Finding) Why() string {
	var parts []string
	if f.Name != "" {
		parts = append(parts, "name "+f.Name)
	}
	if f.Shape != "" {
		parts = append(parts, f.Shape)
	}
	if f.Detail != "" {
		parts = append(parts, f.Detail)
	}
	if f.Entropy > 0 {
		parts = append(parts, "entropy "+strconv.FormatFloat(f.Entropy, 'f', 2, 64))
	}
	return strings.Join(parts, "; ")
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func writeJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(fs) // #nosec G117 -- the field holds the redacted match, never the credential
}

var csvHeader = []string{"rule_id", "path", "line", "column", "end_line", "end_column", "secret", "confirmed",
	"decoded", "managed_secret", "commit", "author", "email", "date", "fingerprint", "description", "name", "shape", "entropy", "detail"}

func writeCSV(w io.Writer, fs []Finding) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, f := range fs {
		date := ""
		if !f.Date.IsZero() {
			date = f.Date.UTC().Format(time.RFC3339)
		}
		rec := []string{f.RuleID, f.Path, strconv.Itoa(f.Line), strconv.Itoa(f.Column), strconv.Itoa(f.EndLine),
			strconv.Itoa(f.EndColumn), f.Redacted, strconv.FormatBool(f.Confirmed), f.Decoded, f.ManagedSecret,
			f.Commit, f.Author, f.Email, date, f.Fingerprint, f.Description, f.Name, f.Shape,
			strconv.FormatFloat(f.Entropy, 'f', 3, 64), f.Detail}
		for i, v := range rec {
			rec[i] = csvSafe(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formula injection from scanned content.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, fs []Finding) error {
	s := junitSuite{Name: "tokenward scan", Tests: len(fs), Failures: len(fs)}
	if len(fs) == 0 {
		s.Tests = 1
		s.Cases = []junitCase{{Name: "no leaked secrets", Classname: "tokenward.scan"}}
	}
	for _, f := range fs {
		loc := fmt.Sprintf("%s:%d:%d", f.Path, f.Line, f.Column)
		text := fmt.Sprintf("%s at %s: %s", f.RuleID, loc, f.Redacted)
		if why := f.Why(); why != "" {
			text += " [" + why + "]"
		}
		if f.Commit != "" {
			text += " in commit " + f.Commit
		}
		s.Cases = append(s.Cases, junitCase{
			Name: f.RuleID + " " + loc, Classname: f.Path,
			Failure: &junitFailure{Message: f.Description, Type: f.RuleID, Text: text},
		})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// SARIF 2.1.0, with what GitHub code scanning requires: tool.driver name and
// rules, results with ruleId, level, message, physical locations with an
// artifact uri and region startLine, and partialFingerprints.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	ShortDescription sarifMessage `json:"shortDescription"`
	DefaultConfig    sarifConfig  `json:"defaultConfiguration"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
	EndLine     int `json:"endLine,omitempty"`
	EndColumn   int `json:"endColumn,omitempty"`
}

func writeSARIF(w io.Writer, fs []Finding, info ReportInfo) error {
	// Rules: those in the rule set that produced findings, plus any others
	// referenced, sorted by id so the output is stable.
	desc := map[string]string{}
	for _, r := range info.Rules {
		desc[r.ID] = r.Description
	}
	used := map[string]bool{}
	for _, f := range fs {
		used[f.RuleID] = true
		if _, ok := desc[f.RuleID]; !ok {
			desc[f.RuleID] = f.Description
		}
	}
	ids := make([]string, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	index := map[string]int{}
	rules := make([]sarifRule, 0, len(ids))
	for i, id := range ids {
		index[id] = i
		d := desc[id]
		if id == ManagedRuleID {
			d = "Leak of a value managed by tokenward"
		}
		if d == "" {
			d = id
		}
		rules = append(rules, sarifRule{ID: id, Name: id, ShortDescription: sarifMessage{d}, DefaultConfig: sarifConfig{"error"}})
	}
	results := make([]sarifResult, 0, len(fs))
	for _, f := range fs {
		msg := fmt.Sprintf("%s: %s", f.RuleID, f.Redacted)
		if f.ManagedSecret != "" {
			msg = "leak of managed secret " + f.ManagedSecret
		}
		if f.Confirmed {
			msg += " (confirmed)"
		}
		if why := f.Why(); why != "" {
			msg += " [" + why + "]"
		}
		res := sarifResult{
			RuleID: f.RuleID, RuleIndex: index[f.RuleID], Level: "error", Message: sarifMessage{msg},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: f.Path},
				Region:           sarifRegion{StartLine: f.Line, StartColumn: f.Column, EndLine: f.EndLine, EndColumn: f.EndColumn + 1},
			}}},
			PartialFingerprints: map[string]string{"tokenward/v1": f.Fingerprint},
		}
		if f.Commit != "" {
			res.Properties = map[string]any{"commit": f.Commit, "author": f.Author, "email": f.Email,
				"date": f.Date.UTC().Format(time.RFC3339)}
		}
		results = append(results, res)
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: "tokenward", Version: info.ToolVersion, InformationURI: "https://github.com/tokenward/tokenward", Rules: rules}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// Baseline is a set of finding fingerprints already known and accepted.
type Baseline map[string]bool

// ReadBaseline reads a JSON report written by --write-baseline (or
// --format json) and returns its fingerprints.
func ReadBaseline(r io.Reader) (Baseline, error) {
	var fs []struct {
		Fingerprint string `json:"fingerprint"`
	}
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&fs); err != nil {
		return nil, fmt.Errorf("baseline: not a JSON findings list: %w", err)
	}
	b := Baseline{}
	for _, f := range fs {
		if f.Fingerprint == "" {
			return nil, fmt.Errorf("baseline: a finding has no fingerprint")
		}
		b[f.Fingerprint] = true
	}
	return b, nil
}

// Filter returns the findings not in the baseline.
func (b Baseline) Filter(fs []Finding) []Finding {
	out := fs[:0:0]
	for _, f := range fs {
		if !b[f.Fingerprint] {
			out = append(out, f)
		}
	}
	return out
}
