package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Alerter sends each anomaly to every configured webhook: Slack-compatible
// or generic signed JSON, per the webhook's Format.
type Alerter struct {
	Sender *Sender
	Hooks  []Webhook
}

// AlertPayload is the generic signed JSON body of an alert.
type AlertPayload struct {
	Type    string    `json:"type"` // always "anomaly"
	Anomaly Anomaly   `json:"anomaly"`
	SentAt  time.Time `json:"sent_at"`
}

// Alert sends a to every hook (each retried by the Sender) and returns the
// joined errors of the hooks that failed. Call it off the request path.
func (a *Alerter) Alert(ctx context.Context, an Anomaly) error {
	var errs []error
	for _, h := range a.Hooks {
		var body []byte
		var err error
		if h.Format == FormatSlack {
			body, err = SlackPayload(an)
		} else {
			body, err = json.Marshal(AlertPayload{Type: "anomaly", Anomaly: an, SentAt: a.Sender.Now().UTC()})
		}
		if err == nil {
			err = a.Sender.Send(ctx, h, body)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control
// characters, so a token name cannot inject links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SlackPayload returns a Slack incoming-webhook body for an anomaly: "text"
// as the notification fallback and "blocks" for the layout.
func SlackPayload(an Anomaly) ([]byte, error) {
	action := "alert"
	if an.Suspend {
		action = "token suspended"
	}
	token := an.TokenID
	if an.TokenName != "" {
		token = an.TokenName + " (" + an.TokenID + ")"
	}
	seqs := make([]string, 0, len(an.Evidence))
	for _, e := range an.Evidence {
		seqs = append(seqs, fmt.Sprint(e.Seq))
	}
	fields := []slackText{
		{Type: "mrkdwn", Text: "*Rule*\n" + string(an.Rule)},
		{Type: "mrkdwn", Text: "*Severity*\n" + string(an.Severity)},
		{Type: "mrkdwn", Text: "*Action*\n" + action},
		{Type: "mrkdwn", Text: "*Time*\n" + an.Time.UTC().Format(time.RFC3339)},
	}
	if token != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Token*\n" + slackEscape(token)})
	}
	if an.SourceIP != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Source IP*\n" + slackEscape(an.SourceIP)})
	}
	if len(seqs) > 0 {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Audit entries*\n" + strings.Join(seqs, ", ")})
	}
	if len(fields) > 10 { // Slack's limit per section
		fields = fields[:10]
	}
	msg := slackMessage{
		Text: fmt.Sprintf("tokenward %s anomaly: %s", an.Severity, slackEscape(an.Explanation)),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: "tokenward: " + string(an.Rule)}},
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: slackEscape(an.Explanation)}},
			{Type: "section", Fields: fields},
		},
	}
	return json.Marshal(msg)
}
