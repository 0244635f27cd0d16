package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"
)

func TestEventsWebhookAndSubscribers(t *testing.T) {
	r := newReceiver(t, signingSecret, t0, 503) // first delivery fails once, then is retried
	s, waits := testSender(t0, io.Discard)
	ev := NewEvents(s, []Webhook{{URL: r.URL, Format: FormatSigned, Secret: signingSecret}}, nil)
	ev.Now = func() time.Time { return t0 }
	if err := ev.Open(); err != nil {
		t.Fatal(err)
	}
	fast, err := ev.Subscribe(16)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := ev.Subscribe(1)
	if err != nil {
		t.Fatal(err)
	}
	published := []Event{
		{Type: EventSecretRotated, Resource: "payments/prod/STRIPE_KEY", Version: 7, Actor: "tok_rot"},
		{Type: EventTokenSuspended, Resource: "token:tok_jit", Reason: string(RuleJITSecondSource)},
		{Type: EventSecretRetired, Resource: "payments/staging/DB_URL"},
	}
	for _, e := range published {
		if err := ev.Publish(e); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// The fast subscriber got all three; the slow one (buffer 1, never read)
	// got the first, then was dropped with a notice.
	for i, want := range published {
		got := <-fast.C
		if got.Type != want.Type || got.Resource != want.Resource || got.ID == "" || !got.Time.Equal(t0) {
			t.Errorf("fast event %d: got %+v; want %s %s with id and time", i, got, want.Type, want.Resource)
		}
	}
	if got := <-slow.C; got.Type != EventSecretRotated {
		t.Errorf("slow subscriber first event: got %s; want %s", got.Type, EventSecretRotated)
	}
	if _, open := <-slow.C; open {
		t.Errorf("slow subscriber channel still open; want it closed after the drop")
	}
	if !errors.Is(slow.Err(), ErrSlowSubscriber) {
		t.Errorf("slow.Err() = %v; want ErrSlowSubscriber", slow.Err())
	}
	if fast.Err() != nil {
		t.Errorf("fast.Err() = %v; want nil", fast.Err())
	}

	if err := ev.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	bodies := r.received()
	if len(bodies) != len(published) {
		t.Fatalf("webhook got %d verified events; want %d", len(bodies), len(published))
	}
	var first Event
	if err := json.Unmarshal(bodies[0], &first); err != nil {
		t.Fatal(err)
	}
	if first.Type != EventSecretRotated || first.Version != 7 {
		t.Errorf("first webhook event: got %+v; want secret.rotated version 7", first)
	}
	if len(*waits) != 1 {
		t.Errorf("got %d backoff waits; want 1 (one 503)", len(*waits))
	}
	st := ev.Stats()
	if st.Published != 3 || st.Delivered != 3 || st.DroppedSubscribers != 1 || st.Failed != 0 {
		t.Errorf("got stats %+v; want 3 published, 3 delivered, 1 dropped subscriber", st)
	}
	if _, open := <-fast.C; open {
		t.Errorf("after Close: fast channel open; want closed")
	}
	if err := ev.Publish(published[0]); err == nil {
		t.Errorf("Publish after Close: got nil; want an error")
	}
}

// TestPublishLocal: a local publish reaches this process's subscribers and
// never a webhook.
func TestPublishLocal(t *testing.T) {
	r := newReceiver(t, signingSecret, t0)
	s, _ := testSender(t0, io.Discard)
	ev := NewEvents(s, []Webhook{{URL: r.URL, Format: FormatSigned, Secret: signingSecret}}, nil)
	if err := ev.Open(); err != nil {
		t.Fatal(err)
	}
	sub, err := ev.Subscribe(4)
	if err != nil {
		t.Fatal(err)
	}
	local := Event{Type: EventTokenSuspended, Resource: "token:tok_local"}
	if err := ev.PublishLocal(local); err != nil {
		t.Fatal(err)
	}
	if err := ev.Publish(Event{Type: EventTokenRevoked, Resource: "token:tok_everywhere"}); err != nil {
		t.Fatal(err)
	}
	if err := ev.PublishLocal(Event{Type: "nope", Resource: "x"}); err == nil {
		t.Errorf("PublishLocal of an unknown type: got nil; want an error")
	}
	for _, want := range []string{"token:tok_local", "token:tok_everywhere"} {
		if got := <-sub.C; got.Resource != want || got.ID == "" {
			t.Errorf("subscriber: got %+v; want %s with an id", got, want)
		}
	}
	if err := ev.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	bodies := r.received()
	if len(bodies) != 1 {
		t.Fatalf("webhook got %d events; want 1 (the local one stays local)", len(bodies))
	}
	var got Event
	if err := json.Unmarshal(bodies[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Resource != "token:tok_everywhere" {
		t.Errorf("webhook event: got %s; want token:tok_everywhere", got.Resource)
	}
}

// TestPublishNeverBlocks fills the webhook queue while the receiver stalls:
// Publish must keep returning and count the drops.
func TestPublishNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	s, _ := testSender(t0, io.Discard)
	s.Sleep = func(ctx context.Context, d time.Duration) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := newReceiver(t, signingSecret, t0, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	ev := NewEvents(s, []Webhook{{URL: r.URL, Format: FormatSigned, Secret: signingSecret}}, nil)
	ev.QueueSize = 2
	if err := ev.Open(); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := ev.Publish(Event{Type: EventSecretUpdated, Resource: "p/e/N"}); err != nil {
			t.Fatal(err)
		}
	}
	if st := ev.Stats(); st.DroppedQueueFull < 40 {
		t.Errorf("got %d dropped; want at least 40 of 50 with a queue of 2 and a stalled receiver", st.DroppedQueueFull)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // give up on the stalled deliveries at once
	if err := ev.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a cancelled context: got %v; want context.Canceled", err)
	}
	close(release)
}

func TestEventValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Event
		ok   bool
	}{
		{"ok", Event{Type: EventTokenRevoked, Resource: "token:tok_a"}, true},
		{"unknown type", Event{Type: "secret.read", Resource: "p/e/N"}, false},
		{"no resource", Event{Type: EventSecretCreated}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.e.Validate(); (err == nil) != tc.ok {
				t.Errorf("got %v; want ok=%v", err, tc.ok)
			}
		})
	}
	ev := NewEvents(nil, []Webhook{{URL: "https://h.example.com/", Format: FormatSlack}}, nil)
	if err := ev.Open(); err == nil {
		t.Errorf("Open with a Slack hook: got nil; want an error (events are signed only)")
	}
	if _, err := NewEvents(nil, nil, nil).Subscribe(0); err == nil {
		t.Errorf("Subscribe before Open: got nil; want an error")
	}
}
