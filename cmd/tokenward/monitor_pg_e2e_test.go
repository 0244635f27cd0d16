//go:build !tokenward_client

package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/monitor"
	"github.com/tokenward/tokenward/internal/pgtest"
)

// streamEvents subscribes to server i's /v1/events/stream and returns the
// events it receives. It returns once subscribed (the stream answers
// after it subscribed).
func (c *scaleCluster) streamEvents(t *testing.T, i int) <-chan monitor.Event {
	t.Helper()
	ctx := t.Context()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.servers[i].addr+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("events stream on server %d: %v", i, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events stream on server %d: got %d; want 200", i, resp.StatusCode)
	}
	out := make(chan monitor.Event, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e monitor.Event
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type == "" {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TestScaleOutMonitorSharesTraffic: on three servers sharing PostgreSQL,
// every server's usage counts the reads made on all of them, and an
// `events tail` subscriber of any server sees a change made on another,
// with the same event id everywhere.
func TestScaleOutMonitorSharesTraffic(t *testing.T) {
	c := newScaleCluster(t, pgtest.Shared(t), 3)
	for _, e := range c.servers {
		e.start()
	}
	a := c.servers[0]
	a.mustCLI("", "project", "create", "payments", "--envs", "prod")
	a.mustCLI("shared-read-value", "secret", "set", "payments/prod/SHARED")

	secrets := []string{c.token}
	t.Run("usage counts every server's reads", func(t *testing.T) {
		created := parseCreated(t, a.mustCLI("", "token", "create", "--name", "counted", "--grant", "read:payments/prod/*", "-o", "json"))
		secrets = append(secrets, created.Secret)
		for i := range 9 {
			if got := c.client(i%3, created.Secret).do("GET", "/v1/secrets/payments/prod/SHARED", nil); got.status != 200 {
				t.Fatalf("read %d: got %d; want 200", i, got.status)
			}
		}
		for i := range c.servers {
			var requests int64
			_, ok := within(5*time.Second, func() bool {
				var u api.TokenUsages[monitor.TokenUsage]
				json.Unmarshal(c.client(i, c.token).do("GET", "/v1/usage/tokens", nil).body, &u)
				requests = u.Tokens[created.Token.ID].Requests
				return requests == 9
			})
			if !ok {
				t.Errorf("server %d counts %d requests of the token; want 9 (3 made on each server)", i, requests)
			}
		}
	})

	t.Run("a change on one server reaches every server's subscribers", func(t *testing.T) {
		streams := []<-chan monitor.Event{c.streamEvents(t, 0), c.streamEvents(t, 1), c.streamEvents(t, 2)}
		c.servers[1].mustCLI("first-value", "secret", "set", "payments/prod/EVENTFUL")
		ids := map[string]bool{}
		for i, s := range streams {
			deadline := time.After(5 * time.Second)
		wait:
			for {
				select {
				case e := <-s:
					if e.Type == monitor.EventSecretCreated && e.Resource == "payments/prod/EVENTFUL" {
						ids[e.ID] = true
						break wait
					}
				case <-deadline:
					t.Errorf("server %d's subscriber: no secret.created for payments/prod/EVENTFUL within 5s", i)
					break wait
				}
			}
		}
		if len(ids) != 1 {
			t.Errorf("event ids of the one change: got %v; want one id on every server", ids)
		}
	})

	t.Run("no token reaches a log", func(t *testing.T) {
		logs := c.logs()
		for _, s := range append(secrets, "shared-read-value", "first-value") {
			if strings.Contains(logs, s) {
				t.Errorf("a token or secret value reached a server log")
			}
		}
	})
}
