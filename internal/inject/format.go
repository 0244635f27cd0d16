package inject

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tokenward/tokenward"
)

// Format is an export format of tokenward export.
type Format string

// Export formats.
const (
	FormatDotenv Format = "dotenv" // NAME='value' or NAME="escaped", one per line
	FormatJSON   Format = "json"   // a flat object name → value
	FormatShell  Format = "shell"  // export NAME='value' lines any POSIX sh can source
	FormatGitHub Format = "github" // heredoc blocks for $GITHUB_ENV, plus ::add-mask:: lines
	FormatGitLab Format = "gitlab" // a GitLab dotenv artifact (artifacts:reports:dotenv)
)

// Formats lists every export format.
var Formats = []Format{FormatDotenv, FormatJSON, FormatShell, FormatGitHub, FormatGitLab}

// GitLabMaxDotenvSize is GitLab's default limit on a dotenv artifact
// (plan_limits.dotenv_size). GitLab accepts an artifact only when it is
// smaller than this (ParseDotenvArtifactService checks size < limit), and
// rejects the whole artifact otherwise.
const GitLabMaxDotenvSize = 5120

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	if f := Format(s); slices.Contains(Formats, f) {
		return f, nil
	}
	return "", tokenward.Errorf(tokenward.EINVALID, "unknown format %q (want dotenv, json, shell, github or gitlab)", printable(s))
}

func sortedNames(values map[string]string) []string {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkValues validates names and the values every format needs: no NUL
// byte, which no environment variable can hold. Errors name the secret,
// never the value.
func checkValues(values map[string]string) error {
	for n, v := range values {
		if err := tokenward.ValidateSecretName(n); err != nil {
			return err
		}
		if strings.IndexByte(v, 0) >= 0 {
			return tokenward.Errorf(tokenward.EINVALID, "secret %s: value holds a NUL byte, which no environment variable can hold", n)
		}
	}
	return nil
}

// Encode renders values in format f. For FormatGitHub it renders only the
// $GITHUB_ENV part; use EncodeGitHub for the mask lines too.
func Encode(f Format, values map[string]string) ([]byte, error) {
	if err := checkValues(values); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	switch f {
	case FormatDotenv:
		for _, n := range sortedNames(values) {
			q, ok := dotenvQuote(values[n])
			if !ok {
				return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: value ends in a backslash and also has blanks at an end, a #, a line break or a leading quote; python-dotenv cannot read such a value back from a dotenv file, so use --format json or shell", n)
			}
			b.WriteString(n + "=" + q + "\n")
		}
	case FormatShell:
		for _, n := range sortedNames(values) {
			b.WriteString("export " + n + "=" + shellQuote(values[n]) + "\n")
		}
	case FormatJSON:
		for n, v := range values {
			if !utf8.ValidString(v) {
				return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: value is not UTF-8, which JSON cannot carry", n)
			}
		}
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(values); err != nil { // map keys are sorted
			return nil, fmt.Errorf("encode json: %w", err)
		}
	case FormatGitHub:
		env, _, err := EncodeGitHub(values)
		return env, err
	case FormatGitLab:
		for _, n := range sortedNames(values) {
			v := values[n]
			if !utf8.ValidString(v) {
				// GitLab converts the artifact to UTF-8, replacing invalid bytes.
				return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: value is not UTF-8; GitLab reads dotenv artifacts as UTF-8, so this value would change", n)
			}
			if strings.ContainsAny(v, "\r\n") {
				return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: GitLab dotenv artifacts do not support multi-line values; use another format or mount the secret as a file", n)
			}
			if strings.TrimSpace(v) != v {
				return nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: GitLab strips leading and trailing blanks from dotenv values, so this value would change", n)
			}
			b.WriteString(n + "=" + gitlabEscape(v) + "\n")
		}
		if b.Len() >= GitLabMaxDotenvSize {
			return nil, tokenward.Errorf(tokenward.ETOOLARGE, "GitLab dotenv artifact would be %d bytes; GitLab accepts only less than %d", b.Len(), GitLabMaxDotenvSize)
		}
	default:
		return nil, tokenward.Errorf(tokenward.EINVALID, "unknown format %q", printable(string(f)))
	}
	return b.Bytes(), nil
}

// EncodeGitHub renders values for GitHub Actions: env is appended to the
// file named by $GITHUB_ENV (each value in a heredoc with its own random
// delimiter, so no value can end its block early or inject a variable), and
// masks is printed on the job's stdout so the runner masks each value (one
// ::add-mask:: per line of a multi-line value) in later log output. Lines
// end at "\r" as well as "\n": the runner reads a step's output with .NET's
// ReadLine, which ends a line at either, and masks each line on its own.
// Values must be UTF-8: the runner reads $GITHUB_ENV as UTF-8 and would
// replace other bytes.
func EncodeGitHub(values map[string]string) (env, masks []byte, err error) {
	if err := checkValues(values); err != nil {
		return nil, nil, err
	}
	var e, m bytes.Buffer
	for _, n := range sortedNames(values) {
		v := values[n]
		if !utf8.ValidString(v) {
			return nil, nil, tokenward.Errorf(tokenward.EINVALID, "secret %s: value is not UTF-8; the Actions runner reads $GITHUB_ENV as UTF-8, so this value would change", n)
		}
		var delim string
		for {
			var r [16]byte
			rand.Read(r[:])
			delim = "ghadelimiter_" + hex.EncodeToString(r[:])
			if !strings.Contains(v, delim) {
				break
			}
		}
		e.WriteString(n + "<<" + delim + "\n" + v + "\n" + delim + "\n")
		for _, line := range logLines(v) {
			if strings.TrimSpace(line) == "" {
				continue
			}
			m.WriteString("::add-mask::" + escapeWorkflowData(line) + "\n")
		}
	}
	return e.Bytes(), m.Bytes(), nil
}

// logLines splits v where a CI runner's log splits it: at "\n", "\r\n" and
// a bare "\r" alike.
func logLines(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' })
}

// escapeWorkflowData escapes a workflow command's data the way the runner
// unescapes it (%, CR, LF).
func escapeWorkflowData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// gitlabEscape writes every $ of v as $$. GitLab stores a dotenv artifact's
// variables with raw: false (Ci::ParseDotenvArtifactService#parse! sets it
// explicitly), and the runner expands every variable that is not raw with
// os.Expand, whose lookup maps the name "$" to "$" (gitlab-runner
// common/variables.go, JobVariables.Get and ExpandValue): so "$$" becomes
// "$", "$NAME" and "${NAME}" become another variable's value, and "${"
// without a name is dropped. With every $ doubled, os.Expand sees only
// "$$" pairs and gives back v exactly (TestGitLabDollarArrivesUnchanged
// runs it; GitLab issue 16442 documents $$ as the escape). The artifact
// itself then holds $$, which is what GitLab needs.
func gitlabEscape(v string) string {
	return strings.ReplaceAll(v, "$", "$$")
}

// dotenvQuote writes v so that python-dotenv and tokenward's own decoder
// read it back unchanged, and Node's dotenv does whenever v needs no
// backslash escape (docs/run-and-export.md); ok is false for the values
// python-dotenv cannot read back in any form.
//
// Single quotes are literal to every dotenv reader except python-dotenv,
// which turns \\ into \ and \' into ' there; so v is single-quoted only
// when it holds no quote, line break or \\. Otherwise it is double-quoted
// with the escapes python-dotenv decodes (\\ \" \n \r); $ is written as
// is, since python-dotenv and Node's dotenv have no \$ escape and would
// keep the backslash. A value ending in \ cannot be quoted at all:
// python-dotenv's patterns for quoted values take the \ before the closing
// quote (escaped or not) with the quote for an escaped quote, and read on
// into the next lines; so it is written unquoted, which every reader takes
// as is when it has no blank at an end, no #, no line break and no leading
// quote, and refused otherwise.
func dotenvQuote(v string) (string, bool) {
	switch {
	case strings.HasSuffix(v, `\`):
		if strings.TrimSpace(v) != v || strings.ContainsAny(v, "#\n\r") || strings.ContainsAny(v[:1], "'\"`") {
			return "", false
		}
		return v, true
	case !strings.ContainsAny(v, "'\n\r") && !strings.Contains(v, `\\`):
		return "'" + v + "'", true
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`).Replace(v) + `"`, true
}

// shellQuote single-quotes v for POSIX sh: nothing inside single quotes is
// special, and a quote is written as '\”.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// Decode parses data in format f back into name → value. It is the inverse
// of Encode, and for FormatGitHub it reads the $GITHUB_ENV part.
func Decode(f Format, data []byte) (map[string]string, error) {
	switch f {
	case FormatDotenv:
		return decodeDotenv(data)
	case FormatShell:
		return decodeShell(data)
	case FormatJSON:
		return decodeJSON(data)
	case FormatGitHub:
		return decodeGitHub(data)
	case FormatGitLab:
		return decodeGitLab(data)
	}
	return nil, tokenward.Errorf(tokenward.EINVALID, "unknown format %q", printable(string(f)))
}

func lineErr(line int, format string, args ...any) error {
	return tokenward.Errorf(tokenward.EINVALID, "line %d: %s", line, fmt.Sprintf(format, args...))
}

func setValue(out map[string]string, line int, name, value string) error {
	if err := tokenward.ValidateSecretName(name); err != nil {
		return lineErr(line, "%s", tokenward.ErrorMessage(err))
	}
	if _, dup := out[name]; dup {
		return lineErr(line, "%s is set twice", name)
	}
	out[name] = value
	return nil
}

func decodeDotenv(data []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		ln := i + 1
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		t = strings.TrimPrefix(t, "export ")
		name, raw, ok := strings.Cut(t, "=")
		if !ok {
			return nil, lineErr(ln, "want NAME=value")
		}
		name = strings.TrimSpace(name)
		raw = strings.TrimSpace(raw)
		var v string
		var rest string
		switch {
		case strings.HasPrefix(raw, "'"):
			end := strings.IndexByte(raw[1:], '\'')
			if end < 0 {
				return nil, lineErr(ln, "unterminated single quote")
			}
			v, rest = raw[1:1+end], raw[2+end:]
		case strings.HasPrefix(raw, `"`):
			var b strings.Builder
			j := 1
			closed := false
			for ; j < len(raw); j++ {
				c := raw[j]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && j+1 < len(raw) {
					j++
					switch raw[j] {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case '\\', '"', '$', '\'':
						b.WriteByte(raw[j])
					default:
						b.WriteByte('\\')
						b.WriteByte(raw[j])
					}
					continue
				}
				b.WriteByte(c)
			}
			if !closed {
				return nil, lineErr(ln, "unterminated double quote")
			}
			v, rest = b.String(), raw[j+1:]
		default:
			v = raw
			if k := strings.Index(v, " #"); k >= 0 {
				v = strings.TrimSpace(v[:k])
			}
		}
		if rest = strings.TrimSpace(rest); rest != "" && rest[0] != '#' {
			return nil, lineErr(ln, "unexpected text after the closing quote")
		}
		if err := setValue(out, ln, name, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeShell reads the subset of sh that Encode writes: lines of
// export NAME='...' where a value is single-quoted pieces and \' escapes,
// possibly spanning lines.
func decodeShell(data []byte) (map[string]string, error) {
	out := map[string]string{}
	s := string(data)
	ln := 1
	for len(s) > 0 {
		if s[0] == '\n' {
			s, ln = s[1:], ln+1
			continue
		}
		if !strings.HasPrefix(s, "export ") {
			return nil, lineErr(ln, "want export NAME='value'")
		}
		s = s[len("export "):]
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, lineErr(ln, "want export NAME='value'")
		}
		name := s[:eq]
		s = s[eq+1:]
		start := ln
		var b strings.Builder
		for len(s) > 0 && s[0] != '\n' {
			switch {
			case s[0] == '\'':
				end := strings.IndexByte(s[1:], '\'')
				if end < 0 {
					return nil, lineErr(start, "unterminated single quote")
				}
				piece := s[1 : 1+end]
				ln += strings.Count(piece, "\n")
				b.WriteString(piece)
				s = s[2+end:]
			case strings.HasPrefix(s, `\'`):
				b.WriteByte('\'')
				s = s[2:]
			default:
				return nil, lineErr(ln, "unexpected %q outside quotes", s[:1])
			}
		}
		if err := setValue(out, start, name, b.String()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeJSON(data []byte) (map[string]string, error) {
	var out map[string]string
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&out); err != nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "want a JSON object of name to string value: %v", jsonErrNoValue(err))
	}
	if dec.More() {
		return nil, tokenward.Errorf(tokenward.EINVALID, "unexpected data after the JSON object")
	}
	if out == nil {
		return nil, tokenward.Errorf(tokenward.EINVALID, "want a JSON object, got null")
	}
	for n := range out {
		if err := tokenward.ValidateSecretName(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// jsonErrNoValue keeps the position and kind of a JSON error but not the
// offending text, which may be part of a value.
func jsonErrNoValue(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at offset %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("a %s where a string was expected, at offset %d", e.Value, e.Offset)
	}
	return "malformed JSON"
}

// decodeGitHub reads a $GITHUB_ENV file: NAME=value lines and
// NAME<<DELIMITER heredoc blocks, as the Actions runner does (a later
// setting of a name wins).
func decodeGitHub(data []byte) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		ln := i + 1
		hd := strings.Index(line, "<<")
		eq := strings.IndexByte(line, '=')
		if hd >= 0 && (eq < 0 || hd < eq) {
			name, delim := line[:hd], line[hd+2:]
			if delim == "" {
				return nil, lineErr(ln, "empty heredoc delimiter")
			}
			var body []string
			closed := false
			for i++; i < len(lines); i++ {
				if lines[i] == delim {
					closed = true
					break
				}
				body = append(body, lines[i])
			}
			if !closed {
				return nil, lineErr(ln, "heredoc for %s is not closed", printable(name))
			}
			if err := setLater(out, ln, name, strings.Join(body, "\n")); err != nil {
				return nil, err
			}
			continue
		}
		if eq < 0 {
			return nil, lineErr(ln, "want NAME=value or NAME<<DELIMITER")
		}
		if err := setLater(out, ln, line[:eq], line[eq+1:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setLater sets a $GITHUB_ENV variable: steps append to one file, so a
// later setting wins, as in the runner.
func setLater(out map[string]string, line int, name, value string) error {
	delete(out, name)
	return setValue(out, line, name, value)
}

// decodeGitLab reads a dotenv artifact under GitLab's rules: NAME=value per
// line, value taken as is (quotes kept) but for $$, which the runner turns
// into $; no empty lines, no multi-line values. A single $ is refused: what
// the job gets for it depends on its other variables.
func decodeGitLab(data []byte) (map[string]string, error) {
	if len(data) >= GitLabMaxDotenvSize {
		return nil, tokenward.Errorf(tokenward.ETOOLARGE, "dotenv artifact is %d bytes; GitLab accepts only less than %d", len(data), GitLabMaxDotenvSize)
	}
	out := map[string]string{}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return out, nil
	}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		name, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, lineErr(i+1, "want NAME=value (GitLab allows no empty lines or comments)")
		}
		v, ok = gitlabUnescape(strings.TrimSpace(v))
		if !ok {
			return nil, lineErr(i+1, "a single $, which GitLab would expand (tokenward writes $ as $$)")
		}
		if err := setValue(out, i+1, name, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gitlabUnescape undoes gitlabEscape; ok is false if v holds a single $.
func gitlabUnescape(v string) (string, bool) {
	if !strings.Contains(v, "$") {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '$' {
			if i+1 >= len(v) || v[i+1] != '$' {
				return "", false
			}
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), true
}
