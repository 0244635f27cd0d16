package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenward/tokenward"
)

// EventType names a change event.
type EventType string

// Change event types.
const (
	EventSecretCreated  EventType = "secret.created"
	EventSecretUpdated  EventType = "secret.updated"
	EventSecretRotated  EventType = "secret.rotated"
	EventSecretRetired  EventType = "secret.retired"
	EventTokenRevoked   EventType = "token.revoked"
	EventTokenSuspended EventType = "token.suspended"
)

var eventTypes = map[EventType]bool{
	EventSecretCreated: true, EventSecretUpdated: true, EventSecretRotated: true,
	EventSecretRetired: true, EventTokenRevoked: true, EventTokenSuspended: true,
}

// Event is one change consumers may react to. It never holds a secret value
// or a token: Resource is project/env/name or "token:<id>".
type Event struct {
	ID       string            `json:"id"` // "evt_" + 16 hex; set by Publish when empty
	Type     EventType         `json:"type"`
	Time     time.Time         `json:"time"`
	Resource string            `json:"resource"`
	Actor    string            `json:"actor,omitempty"`   // token id of who caused it
	Version  int               `json:"version,omitempty"` // the secret's new version
	Reason   string            `json:"reason,omitempty"`  // e.g. the anomaly rule of a suspension
	Data     map[string]string `json:"data,omitempty"`    // further non-secret facts
}

// Validate checks an event before it is published.
func (e *Event) Validate() error {
	switch {
	case !eventTypes[e.Type]:
		return tokenward.Errorf(tokenward.EINVALID, "event type %q is unknown", tokenward.Printable(string(e.Type)))
	case e.Resource == "" || len(e.Resource) > 512:
		return tokenward.Errorf(tokenward.EINVALID, "event resource must be 1 to 512 characters")
	case len(e.Data) > 32:
		return tokenward.Errorf(tokenward.EINVALID, "event has more than 32 data fields")
	}
	return nil
}

// ErrSlowSubscriber is what Subscription.Err reports after the subscriber
// was dropped for not keeping up.
var ErrSlowSubscriber = tokenward.Errorf(tokenward.EUNAVAILABLE, "event subscriber dropped: it did not keep up; resubscribe")

// Subscription receives events on C until Close, or until it is dropped for
// being slow (then C is closed and Err returns ErrSlowSubscriber).
type Subscription struct {
	C       <-chan Event
	c       chan Event
	events  *Events
	dropped atomic.Bool
}

// Err returns ErrSlowSubscriber if the subscription was dropped, else nil.
func (s *Subscription) Err() error {
	if s.dropped.Load() {
		return ErrSlowSubscriber
	}
	return nil
}

// Close unsubscribes; C is closed.
func (s *Subscription) Close() { s.events.remove(s, false) }

// Events fans change events out to webhooks (signed, retried, from a
// bounded queue drained by one goroutine) and to in-process subscribers
// (bounded channels). Publish never blocks.
type Events struct {
	Sender    *Sender
	Hooks     []Webhook
	QueueSize int // webhook queue; default 1024. When full, events are dropped and counted.
	Now       func() time.Time
	Logger    *slog.Logger

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	queue  chan Event
	done   chan struct{}
	cancel context.CancelFunc

	published, droppedQueue, droppedSubs, delivered, failed atomic.Uint64
}

// NewEvents returns an Events with the defaults; call Open before Publish.
func NewEvents(sender *Sender, hooks []Webhook, logger *slog.Logger) *Events {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Events{Sender: sender, Hooks: hooks, QueueSize: 1024, Now: time.Now, Logger: logger.WithGroup("events")}
}

// Open validates the hooks and starts the delivery goroutine.
func (ev *Events) Open() error {
	for i := range ev.Hooks {
		if err := ev.Hooks[i].Validate(); err != nil {
			return err
		}
		if ev.Hooks[i].Format != FormatSigned {
			return tokenward.Errorf(tokenward.EINVALID, "event webhook to %s: events are sent signed only", ev.Hooks[i].host())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ev.mu.Lock()
	ev.subs = make(map[*Subscription]struct{})
	q := make(chan Event, max(ev.QueueSize, 1))
	ev.queue = q
	ev.done = make(chan struct{})
	ev.cancel = cancel
	ev.mu.Unlock()
	go ev.deliver(ctx, q)
	return nil
}

// Close stops accepting events, delivers what is queued (each delivery
// still retried, until ctx is done) and closes every subscription.
func (ev *Events) Close(ctx context.Context) error {
	ev.mu.Lock()
	q := ev.queue
	ev.queue = nil
	for s := range ev.subs {
		delete(ev.subs, s)
		close(s.c)
	}
	ev.mu.Unlock()
	if q == nil {
		return nil
	}
	close(q)
	select {
	case <-ev.done:
		ev.cancel()
		return nil
	case <-ctx.Done():
		ev.cancel()
		<-ev.done
		return ctx.Err()
	}
}

// Subscribe returns a subscription with a channel of buffer events (1 to
// 4096; 0 means 256).
func (ev *Events) Subscribe(buffer int) (*Subscription, error) {
	if buffer == 0 {
		buffer = 256
	}
	if buffer < 1 || buffer > 4096 {
		return nil, tokenward.Errorf(tokenward.EINVALID, "subscriber buffer %d: want 1 to 4096", buffer)
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, events: ev}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.queue == nil {
		return nil, tokenward.Errorf(tokenward.EUNAVAILABLE, "events are closed")
	}
	ev.subs[s] = struct{}{}
	return s, nil
}

func (ev *Events) remove(s *Subscription, slow bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if _, ok := ev.subs[s]; !ok {
		return
	}
	delete(ev.subs, s)
	if slow {
		s.dropped.Store(true)
	}
	close(s.c)
}

// Publish validates e, fills its ID and Time when empty, hands it to every
// subscriber and queues it for the webhooks. It never blocks: a subscriber
// whose channel is full is dropped (with a log notice), and an event that
// finds the webhook queue full is dropped and counted.
func (ev *Events) Publish(e Event) error { return ev.publish(e, true) }

// PublishLocal is Publish without the webhooks: it hands e to this
// process's subscribers only. Of several servers that each learn of the
// same change (by reading a shared audit table), one publishes it and the
// others publish it locally, so every subscriber sees it and every webhook
// receives it once.
func (ev *Events) PublishLocal(e Event) error { return ev.publish(e, false) }

func (ev *Events) publish(e Event, hooks bool) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		e.ID = "evt_" + hex.EncodeToString(b[:])
	}
	if e.Time.IsZero() {
		e.Time = ev.Now().UTC()
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.queue == nil {
		return tokenward.Errorf(tokenward.EUNAVAILABLE, "events are closed")
	}
	ev.published.Add(1)
	for s := range ev.subs {
		select {
		case s.c <- e:
		default:
			delete(ev.subs, s)
			s.dropped.Store(true)
			close(s.c)
			ev.droppedSubs.Add(1)
			ev.Logger.Warn("dropped a slow event subscriber", "buffer", cap(s.c))
		}
	}
	if hooks && len(ev.Hooks) > 0 {
		select {
		case ev.queue <- e:
		default:
			ev.droppedQueue.Add(1)
			ev.Logger.Error("event webhook queue full: event dropped", "type", string(e.Type), "id", e.ID)
		}
	}
	return nil
}

func (ev *Events) deliver(ctx context.Context, q <-chan Event) {
	defer close(ev.done)
	for e := range q {
		body, err := json.Marshal(e)
		if err != nil {
			continue
		}
		for _, h := range ev.Hooks {
			if err := ev.Sender.Send(ctx, h, body); err != nil {
				ev.failed.Add(1)
				ev.Logger.Error("event not delivered", "type", string(e.Type), "id", e.ID, "error", err.Error())
				continue
			}
			ev.delivered.Add(1)
		}
	}
}

// EventStats are counters for metrics.
type EventStats struct {
	Published, Delivered, Failed, DroppedQueueFull, DroppedSubscribers uint64
}

// Stats returns the event counters (Prometheus counters).
func (ev *Events) Stats() EventStats {
	return EventStats{
		Published: ev.published.Load(), Delivered: ev.delivered.Load(), Failed: ev.failed.Load(),
		DroppedQueueFull: ev.droppedQueue.Load(), DroppedSubscribers: ev.droppedSubs.Load(),
	}
}
