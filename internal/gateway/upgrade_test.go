package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// TestUpgradeNotPassedThrough: docs/gateway.md promises that Upgrade is
// dropped and that protocol upgrades are not passed through. A caller's
// WebSocket handshake must reach the upstream as a plain request, and an
// upstream that switches protocols anyway gets the caller a 502, promptly:
// the gateway must not wait on the switched connection as if it were a
// response body.
func TestUpgradeNotPassedThrough(t *testing.T) {
	tests := []struct {
		name        string
		request     string // sent by the caller after the request line
		upstream101 bool   // the upstream answers 101 whatever it is asked
		wantStatus  int
	}{
		{"websocket handshake", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", false, 426},
		{"upstream switches unasked", "", true, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := make(chan string, 1)
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Get("Upgrade")
				if r.Header.Get("Upgrade") == "" && !tt.upstream101 {
					w.WriteHeader(http.StatusUpgradeRequired) // a plain request to a WebSocket endpoint
					return
				}
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				brw.Flush()
				<-release // the socket stays open, as a WebSocket's does
			}))
			t.Cleanup(up.Close)
			g, _ := newGateway(t, route("ws", up.URL, "header:Authorization=Bearer {{value}}"))
			srv, _ := front(t, g)
			t.Cleanup(func() { close(release) }) // runs first: lets every handler end

			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET /gw/ws/socket HTTP/1.1\r\nHost: gw.test\r\n%s\r\n", tt.request)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer within 5s: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("caller got %s; want %d", resp.Status, tt.wantStatus)
			}
			if u := <-seen; u != "" {
				t.Errorf("the upstream received Upgrade: %q; want it dropped", u)
			}
		})
	}
}

// TestInformationalMasked: the headers of a 1xx answer (103 Early Hints)
// reach the caller too, and are masked as the final answer's are.
func TestInformationalMasked(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; x="+r.Header.Get("Authorization"))
		w.Header().Set("X-Debug-Key", r.Header.Get("X-Api-Key"))
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("X-Debug-Key")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	tests := []struct{ inject, leak string }{
		{"header:Authorization=Bearer {{value}}", injectedValue},
		{"header:X-Api-Key={{value}}", injectedValue},
		{"basic", basicOf(userValue, injectedValue)},
	}
	for i, tt := range tests {
		t.Run(tt.inject, func(t *testing.T) {
			name := fmt.Sprintf("hints%d", i)
			g, _ := newGateway(t, route(name, up.URL, tt.inject))
			srv, _ := front(t, g)
			var hints []string
			req, _ := http.NewRequest("GET", srv.URL+"/gw/"+name+"/x", nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					hints = append(hints, fmt.Sprint(code, " ", h))
					return nil
				}}))
			resp, body := do(t, req)
			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q; want 200 ok", resp.StatusCode, body)
			}
			if len(hints) == 0 {
				t.Fatal("no 1xx answer reached the caller")
			}
			if all := strings.Join(hints, "\n"); strings.Contains(all, tt.leak) {
				t.Errorf("the credential came back in a 1xx answer: %s", all)
			}
		})
	}
}

// TestConsoleCookieNotForwarded: a caller that sends the web console's
// session cookie along with its bearer token (a same-origin client)
// must not hand the upstream a session on tokenward; its other cookies
// go on.
func TestConsoleCookieNotForwarded(t *testing.T) {
	got := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- strings.Join(r.Header.Values("Cookie"), " | ")
	}))
	t.Cleanup(up.Close)
	g, _ := newGateway(t, route("ck", up.URL, "header:Authorization=Bearer {{value}}"))
	srv, _ := front(t, g)
	tests := []struct {
		cookies []string
		want    string
	}{
		{[]string{"__Host-tokenward_console=fake-session-1; theme=dark"}, "theme=dark"},
		{[]string{"a=1", "tokenward_console=fake-session-2"}, "a=1"},
		{[]string{"__Host-tokenward_console=fake-session-3"}, ""},
		{[]string{"b=2; c=3"}, "b=2; c=3"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", srv.URL+"/gw/ck/x", nil)
		for _, c := range tt.cookies {
			req.Header.Add("Cookie", c)
		}
		if resp, _ := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("%q: got %d; want 200", tt.cookies, resp.StatusCode)
		}
		if c := <-got; c != tt.want {
			t.Errorf("%q: the upstream got Cookie %q; want %q", tt.cookies, c, tt.want)
		}
	}
}
