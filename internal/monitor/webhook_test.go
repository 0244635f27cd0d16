package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/webhook"
)

var signingSecret = []byte("whsec-test-0123456789abcdef-SIGNKEY")

// receiver is a real HTTP server on loopback that verifies signatures and
// answers with the scripted statuses (then 200).
type receiver struct {
	*httptest.Server
	secret   []byte
	now      time.Time
	mu       sync.Mutex
	script   []int
	bodies   [][]byte
	badSigs  int
	attempts atomic.Int64
}

func newReceiver(t *testing.T, secret []byte, now time.Time, script ...int) *receiver {
	t.Helper()
	r := &receiver{secret: secret, now: now, script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.attempts.Add(1)
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.script) > 0 {
			code := r.script[0]
			r.script = r.script[1:]
			w.WriteHeader(code)
			return
		}
		if r.secret != nil {
			if err := webhook.Verify(r.secret, req.Header, body, r.now, 5*time.Minute); err != nil {
				r.badSigs++
				http.Error(w, "bad signature", http.StatusUnauthorized)
				return
			}
		}
		if req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want json", http.StatusUnsupportedMediaType)
			return
		}
		r.bodies = append(r.bodies, body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// testSender sleeps on a fake clock: it records the waits instead.
func testSender(now time.Time, logs io.Writer) (*Sender, *[]time.Duration) {
	var waits []time.Duration
	var mu sync.Mutex
	s := NewSender(slog.New(slog.NewTextHandler(logs, nil)))
	s.Now = func() time.Time { return now }
	s.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return s, &waits
}

var sampleAnomaly = Anomaly{
	Rule: RuleJITSecondSource, Severity: SeverityHigh, Time: t0, TokenID: "tok_jit", TokenName: "ci-<!here>",
	SourceIP: "10.0.2.5", Explanation: "just-in-time token used from network 10.0.2.0/24 & <b>",
	Evidence: []Evidence{{Seq: 2, RequestID: "req-2"}}, Suspend: true,
}

func TestAlerterSignedAndSlack(t *testing.T) {
	signed := newReceiver(t, signingSecret, t0)
	slack := newReceiver(t, nil, t0)
	s, _ := testSender(t0, io.Discard)
	a := &Alerter{Sender: s, Hooks: []Webhook{
		{URL: signed.URL + "/hook", Format: FormatSigned, Secret: signingSecret},
		{URL: slack.URL + "/services/T0/B0/xyz", Format: FormatSlack},
	}}
	if err := a.Alert(context.Background(), sampleAnomaly); err != nil {
		t.Fatalf("Alert: %v", err)
	}
	got := signed.received()
	if len(got) != 1 {
		t.Fatalf("signed receiver: got %d bodies; want 1", len(got))
	}
	var p AlertPayload
	if err := json.Unmarshal(got[0], &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "anomaly" || p.Anomaly.Rule != RuleJITSecondSource || !p.Anomaly.Suspend || p.Anomaly.Evidence[0].Seq != 2 {
		t.Errorf("got payload %+v; want the anomaly", p)
	}

	sg := slack.received()
	if len(sg) != 1 {
		t.Fatalf("slack receiver: got %d bodies; want 1", len(sg))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(sg[0], &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "high") || len(msg.Blocks) != 3 || msg.Blocks[0].Type != "header" {
		t.Errorf("got slack message %s; want text with severity and 3 blocks starting with a header", sg[0])
	}
	if strings.Contains(string(sg[0]), "<!here>") || strings.Contains(string(sg[0]), "<b>") {
		t.Errorf("got %s; want Slack control characters escaped", sg[0])
	}
}

func TestSenderRetries(t *testing.T) {
	tests := []struct {
		name      string
		script    []int
		wantErr   bool
		wantTries int64
		wantWaits []time.Duration
	}{
		{"first try", nil, false, 1, nil},
		{"two 503 then ok", []int{503, 503}, false, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"429 then ok", []int{429}, false, 2, []time.Duration{time.Second}},
		{"400 is permanent", []int{400}, true, 1, nil},
		{"redirect is not followed", []int{307}, true, 1, nil},
		{"always 500", []int{500, 500, 500, 500, 500, 500}, true, 5, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, signingSecret, t0, tc.script...)
			s, waits := testSender(t0, io.Discard)
			err := s.Send(context.Background(), Webhook{URL: r.URL, Format: FormatSigned, Secret: signingSecret}, []byte(`{"a":1}`))
			if (err != nil) != tc.wantErr {
				t.Errorf("got error %v; want error=%v", err, tc.wantErr)
			}
			if n := r.attempts.Load(); n != tc.wantTries {
				t.Errorf("got %d attempts; want %d", n, tc.wantTries)
			}
			if len(*waits) != len(tc.wantWaits) {
				t.Fatalf("got waits %v; want %v", *waits, tc.wantWaits)
			}
			for i := range tc.wantWaits {
				if (*waits)[i] != tc.wantWaits[i] {
					t.Errorf("got waits %v; want %v", *waits, tc.wantWaits)
				}
			}
			if !tc.wantErr && len(r.received()) != 1 {
				t.Errorf("got %d verified deliveries; want 1", len(r.received()))
			}
		})
	}
}

// TestSenderNeverLeaksSecrets sends to a receiver that is down, with a
// secret in the URL path (as Slack URLs have) and a signing key: neither
// may reach the logs or the error.
func TestSenderNeverLeaksSecrets(t *testing.T) {
	r := newReceiver(t, signingSecret, t0)
	r.Close() // down
	const pathSecret = "XOXB-PATH-SECRET-98765"
	var logs bytes.Buffer
	s, _ := testSender(t0, &logs)
	for _, h := range []Webhook{
		{URL: r.URL + "/services/" + pathSecret, Format: FormatSlack},
		{URL: r.URL + "/hook?key=" + pathSecret, Format: FormatSigned, Secret: signingSecret},
	} {
		err := s.Send(context.Background(), h, []byte(`{}`))
		if err == nil {
			t.Fatal("got no error from a down receiver; want one")
		}
		out := logs.String() + err.Error()
		for _, secret := range []string{pathSecret, string(signingSecret)} {
			if strings.Contains(out, secret) {
				t.Errorf("logs or error hold %q:\n%s", secret, out)
			}
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("got error %q; want it to name the host", err)
		}
	}
	if !strings.Contains(logs.String(), "delivery failed") {
		t.Errorf("got logs %q; want the failures logged", logs.String())
	}
}

func TestWebhookValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    Webhook
		ok   bool
	}{
		{"slack", Webhook{URL: "https://hooks.example.com/x", Format: FormatSlack}, true},
		{"signed", Webhook{URL: "https://h.example.com/", Format: FormatSigned, Secret: signingSecret}, true},
		{"short secret", Webhook{URL: "https://h.example.com/", Format: FormatSigned, Secret: []byte("short")}, false},
		{"ftp", Webhook{URL: "ftp://h.example.com/", Format: FormatSlack}, false},
		{"relative", Webhook{URL: "/x", Format: FormatSlack}, false},
		{"unknown format", Webhook{URL: "https://h.example.com/", Format: "xml"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.w.Validate(); (err == nil) != tc.ok {
				t.Errorf("got %v; want ok=%v", err, tc.ok)
			}
		})
	}
}
