package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/audit"
)

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
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
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
func (c *Client) SearchAudit(ctx context.Context, q audit.Query, wait time.Duration) (*api.AuditEntriesResponse, error) {
	var out api.AuditEntriesResponse
	err := c.do(ctx, "GET", at("/v1/audit/entries"+auditParams(q, wait)), nil, &out)
	return &out, err
}

// AuditKey returns the PEM public key that signs the server's checkpoints.
func (c *Client) AuditKey(ctx context.Context) ([]byte, error) {
	var out api.AuditKeyResponse
	err := c.do(ctx, "GET", at("/v1/audit/key"), nil, &out)
	return []byte(out.PublicKey), err
}

// ExportAudit streams the whole trail (JSON lines, audit.Export format) to
// w. It returns an error if the stream is cut short (the last line then
// fails audit.ReadExport as well).
func (c *Client) ExportAudit(ctx context.Context, w io.Writer) error {
	resp, err := c.send(ctx, c.streamClient(), "GET", at("/v1/audit/export"), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("audit export cut short: %w", err)
	}
	return nil
}
