package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
)

// AuditPage is one answer of GET /v1/audit/entries.
type AuditPage struct {
	Entries []*tokenward.AuditEntry `json:"entries"`
	Next    int64                   `json:"next"`
}

func auditParams(q audit.Query, wait time.Duration) string {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("token", q.Token)
	set("resource", q.Resource)
	set("action", q.Action)
	set("outcome", q.Outcome)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Newest {
		v.Set("order", "newest")
	}
	if wait > 0 {
		v.Set("wait", wait.String())
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// SearchAudit searches the audit trail. With wait above zero the server
// holds the request until an entry after q.After arrives or wait ends.
func (c *Client) SearchAudit(ctx context.Context, q audit.Query, wait time.Duration) (*AuditPage, error) {
	var out AuditPage
	err := c.do(ctx, "GET", "/v1/audit/entries"+auditParams(q, wait), nil, &out)
	return &out, err
}

// VerifyReport is the server's verification of its stored trail.
type VerifyReport struct {
	audit.Report
	OK    bool   `json:"ok"`
	KeyID string `json:"key_id"`
}

// VerifyAudit asks the server to verify its stored trail.
func (c *Client) VerifyAudit(ctx context.Context) (*VerifyReport, error) {
	var out VerifyReport
	err := c.do(ctx, "GET", "/v1/audit/verify", nil, &out)
	return &out, err
}

// AuditKey returns the PEM public key that signs the server's checkpoints.
func (c *Client) AuditKey(ctx context.Context) ([]byte, error) {
	var out struct {
		KeyID     string `json:"key_id"`
		PublicKey string `json:"public_key"`
	}
	err := c.do(ctx, "GET", "/v1/audit/key", nil, &out)
	return []byte(out.PublicKey), err
}

// ExportAudit streams the whole trail (JSON lines, audit.Export format) to
// w. It returns an error if the stream is cut short (the last line then
// fails audit.ReadExport as well).
func (c *Client) ExportAudit(ctx context.Context, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.Addr+"/v1/audit/export", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("User-Agent", c.UserAgent)
	hc := *c.httpClient()
	hc.Timeout = 0 // an export may take longer than one API call; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, c.Addr, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return errorFromBody(resp, b)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("audit export cut short: %w", err)
	}
	return nil
}

func errorFromBody(resp *http.Response, b []byte) error {
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		return &tokenward.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return tokenward.Errorf(tokenward.EINTERNAL, "server answered %s", resp.Status)
}
