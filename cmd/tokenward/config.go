package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
)

// DefaultAddr is where the server listens and clients look by default.
const DefaultAddr = "127.0.0.1:8750"

// client builds an API client from TOKENWARD_ADDR and TOKENWARD_TOKEN (or
// --token-file). The token is never a command-line value.
func (m *Main) client(f *clientFlags) (*client.Client, error) {
	token := m.Getenv("TOKENWARD_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, usageError("no token: set TOKENWARD_TOKEN or use --token-file")
	}
	if _, err := tokenward.ParseToken(token); err != nil {
		source := "TOKENWARD_TOKEN"
		if f.tokenFile != "" {
			source = "--token-file"
		}
		return nil, fmt.Errorf("%s: %s", source, tokenward.ErrorMessage(err))
	}
	return m.newClient(token)
}

// newClient is a client for TOKENWARD_ADDR with token (empty: none yet),
// trusting TOKENWARD_CACERT when it is set.
func (m *Main) newClient(token string) (*client.Client, error) {
	addr := m.Getenv("TOKENWARD_ADDR")
	if addr == "" {
		addr = "http://" + DefaultAddr
	}
	c, err := client.New(addr, token)
	if err != nil {
		return nil, err
	}
	if ca := m.Getenv("TOKENWARD_CACERT"); ca != "" {
		if err := c.TrustCAFile(ca); err != nil {
			return nil, fmt.Errorf("TOKENWARD_CACERT: %w", err)
		}
	}
	return c, nil
}

// usageError is an error with exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// cliError turns an API error into its message, without the package prefix.
func cliError(err error) error {
	var e *tokenward.Error
	if err != nil && asError(err, &e) {
		return fmt.Errorf("%s (%s)", e.Message, e.Code)
	}
	return err
}

func asError(err error, target **tokenward.Error) bool {
	for err != nil {
		if e, ok := err.(*tokenward.Error); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseDuration accepts Go durations and whole days or weeks (30d, 2w).
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 3650 {
			return 0, badDuration(s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	if n, ok := strings.CutSuffix(s, "w"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 520 {
			return 0, badDuration(s)
		}
		return time.Duration(d) * 7 * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, badDuration(s)
	}
	return d, nil
}

func badDuration(s string) error {
	return fmt.Errorf("invalid duration %q (use e.g. 15m, 24h, 30d)", tokenward.Printable(s))
}

// parseDate accepts YYYY-MM-DD (end of that day, UTC) or RFC 3339.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid date %q (use YYYY-MM-DD or RFC 3339)", tokenward.Printable(s))
}
