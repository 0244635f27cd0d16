package gateway_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/gateway"
)

const (
	injectedValue = "ghp_S3cretUpstreamCredential0123456789"
	userValue     = "deploy-bot-user"
)

// secrets is a SecretSource over a map the test changes (a rotation).
type secrets struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *secrets) GatewaySecret(_ context.Context, path string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[path]
	if !ok {
		return nil, tokenward.Errorf(tokenward.ENOTFOUND, "no secret")
	}
	return []byte(v), nil
}

type routes map[string]*tokenward.GatewayRoute

func (r routes) GatewayRoute(_ context.Context, name string) (*tokenward.GatewayRoute, error) {
	if rt, ok := r[name]; ok {
		return rt, nil
	}
	return nil, tokenward.Errorf(tokenward.ENOTFOUND, "route %s not found", name)
}

// front serves /gw/<route>/<path> through g as the server does (grant
// checks are the server's, in internal/httpapi), and reports the call.
func front(t *testing.T, g *gateway.Gateway) (*httptest.Server, chan *gateway.Call) {
	calls := make(chan *gateway.Call, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/gw/"), "/")
		rt, err := g.Route(r.Context(), name)
		if err != nil {
			http.Error(w, tokenward.ErrorMessage(err), http.StatusNotFound)
			return
		}
		segs, err := gateway.CheckPath("/" + rest)
		if _, refused := rt.Refuses(r, segs); err != nil || refused {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		c := &gateway.Call{Route: rt, Path: "/" + rest}
		g.Forward(w, r, c)
		calls <- c
		if c.Err != nil {
			http.Error(w, tokenward.ErrorMessage(c.Err), c.Status)
		}
		if c.Aborted {
			panic(http.ErrAbortHandler)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, calls
}

func newGateway(t *testing.T, rts ...*tokenward.GatewayRoute) (*gateway.Gateway, *secrets) {
	s := &secrets{m: map[string]string{"acme/prod/TOKEN": injectedValue, "acme/prod/USER": userValue}}
	m := routes{}
	for _, r := range rts {
		m[r.Name] = r
	}
	g := &gateway.Gateway{Routes: m, Secrets: s}
	t.Cleanup(g.Close)
	return g, s
}

func route(name, upstream, inject string) *tokenward.GatewayRoute {
	r := &tokenward.GatewayRoute{Name: name, Upstream: upstream, Secret: "acme/prod/TOKEN", Inject: inject,
		Allow: []string{"* /**"}, AllowNets: []string{"127.0.0.0/8"}}
	if inject == "basic" {
		r.UserSecret = "acme/prod/USER"
	}
	return r
}

// seen is what an upstream received.
type seen struct {
	header http.Header
	url    string
	host   string
}

func recorder(t *testing.T, tlsServer bool) (*httptest.Server, chan seen) {
	ch := make(chan seen, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- seen{r.Header.Clone(), r.URL.String(), r.Host}
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "ok")
	})
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, ch
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

// do sends req and returns its answer with the whole body.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const callerToken = "tws_callerTokenThatMustNeverBeForwarded"

// TestInjectionStyles: each style puts the CURRENT value where the route
// says; the caller's credential, hop-by-hop headers and headers that name
// another path (X-Original-URL) are not forwarded; X-Forwarded-* are this
// hop's.
func TestInjectionStyles(t *testing.T) {
	up, got := recorder(t, false)
	tests := []struct {
		inject string
		check  func(s seen) string
	}{
		{"header:Authorization=Bearer {{value}}", func(s seen) string { return s.header.Get("Authorization") }},
		{"header:X-Api-Key={{value}}", func(s seen) string { return s.header.Get("X-Api-Key") }},
		{"query:api_key", func(s seen) string { return s.url }},
		{"basic", func(s seen) string { return s.header.Get("Authorization") }},
	}
	want := map[string]string{
		"header:Authorization=Bearer {{value}}": "Bearer " + injectedValue,
		"header:X-Api-Key={{value}}":            injectedValue,
		"query:api_key":                         "/base/repos/acme/x?api_key=" + injectedValue + "&q=1",
		"basic":                                 "Basic " + basicOf(userValue, injectedValue),
	}
	for i, tt := range tests {
		t.Run(tt.inject, func(t *testing.T) {
			name := fmt.Sprintf("r%d", i)
			g, _ := newGateway(t, route(name, up.URL+"/base", tt.inject))
			srv, _ := front(t, g)
			resp, body := get(t, srv.URL+"/gw/"+name+"/repos/acme/x?q=1&api_key=caller", map[string]string{
				"Authorization": "Bearer " + callerToken, "Connection": "X-Hop", "X-Hop": "1", "X-Forwarded-For": "6.6.6.6",
				"X-Original-URL": "/admin", "X_Rewrite_URL": "/admin"})
			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q; want 200 ok", resp.StatusCode, body)
			}
			s := <-got
			if g := tt.check(s); g != want[tt.inject] {
				t.Errorf("injected: got %q; want %q", g, want[tt.inject])
			}
			for k, vs := range s.header {
				if strings.Contains(strings.Join(vs, ","), callerToken) {
					t.Errorf("the caller's token reached the upstream in %s", k)
				}
			}
			if strings.HasPrefix(tt.inject, "query:") && strings.Contains(s.url, "caller") {
				t.Errorf("the caller's api_key reached the upstream: %s", s.url)
			}
			if s.header.Get("X-Hop") != "" {
				t.Error("a hop-by-hop header named in Connection was forwarded")
			}
			for k := range s.header {
				if strings.Contains(strings.ToLower(k), "original") || strings.Contains(strings.ToLower(k), "rewrite") {
					t.Errorf("%s, which names another path than the one checked, was forwarded", k)
				}
			}
			if xff := s.header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
				t.Errorf("X-Forwarded-For: got %q; want this hop's 127.0.0.1 only", xff)
			}
			if s.header.Get("X-Forwarded-Host") == "" || s.header.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("X-Forwarded-Host/Proto: got %q, %q", s.header.Get("X-Forwarded-Host"), s.header.Get("X-Forwarded-Proto"))
			}
			if !strings.HasPrefix(up.URL, "http://"+s.host) {
				t.Errorf("Host: got %q; want the upstream's", s.host)
			}
		})
	}
}

func basicOf(u, p string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(u, p)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestEgressAndTLS: loopback is refused unless the route allows it; a TLS
// upstream is verified, against the route's CA bundle when it has one.
func TestEgressAndTLS(t *testing.T) {
	plain, _ := recorder(t, false)
	tlsUp, _ := recorder(t, true)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw}))
	noNets := route("nonets", plain.URL, "query:k")
	noNets.AllowNets = nil
	withCA := route("withca", tlsUp.URL, "query:k")
	withCA.CABundle = caPEM
	tests := []struct {
		route      *tokenward.GatewayRoute
		status     int
		msgContain string
	}{
		{noNets, 502, "egress policy"},
		{route("noca", tlsUp.URL, "query:k"), 502, "cannot be reached"},
		{withCA, 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.route.Name, func(t *testing.T) {
			g, _ := newGateway(t, tt.route)
			srv, calls := front(t, g)
			resp, body := get(t, srv.URL+"/gw/"+tt.route.Name+"/x", nil)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.msgContain) {
				t.Fatalf("got %d %q; want %d with %q", resp.StatusCode, body, tt.status, tt.msgContain)
			}
			c := <-calls
			if c.Err != nil && strings.Contains(c.Err.Error(), injectedValue) {
				t.Fatalf("the error holds the secret: %v", c.Err)
			}
		})
	}
}

// TestEchoMasked: an upstream that echoes the credential — in a header, in
// the body split across chunks, in a trailer — has it masked, each form.
func TestEchoMasked(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Echo-Trailer")
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		half := len(injectedValue) / 2
		io.WriteString(w, "start "+injectedValue[:half])
		w.(http.Flusher).Flush()
		io.WriteString(w, injectedValue[half:]+" end "+basicOf(userValue, injectedValue))
		w.Header().Set("X-Echo-Trailer", injectedValue)
	}))
	t.Cleanup(up.Close)
	for _, inj := range []string{"header:Authorization=token {{value}}", "basic"} {
		t.Run(inj, func(t *testing.T) {
			g, _ := newGateway(t, route("echo", up.URL, inj))
			srv, _ := front(t, g)
			resp, body := get(t, srv.URL+"/gw/echo/x", nil)
			all := body + fmt.Sprint(resp.Header) + fmt.Sprint(resp.Trailer)
			if strings.Contains(all, injectedValue) || strings.Contains(all, basicOf(userValue, injectedValue)) {
				t.Fatalf("the credential came back: %s", all)
			}
			if !strings.HasPrefix(body, "start ***") || !strings.Contains(body, " end ") {
				t.Errorf("body: got %q; want the value masked in place", body)
			}
			if resp.Trailer.Get("X-Echo-Trailer") != "***" {
				t.Errorf("trailer: got %q; want ***", resp.Trailer.Get("X-Echo-Trailer"))
			}
		})
	}
}

// TestServerSentEvents: an event reaches the caller while the upstream's
// stream is still open (nothing is buffered to the end), also when the
// stream declares its length (answers of known length are otherwise read
// whole: TestSmallAnswers).
func TestServerSentEvents(t *testing.T) {
	const events = "data: one\n\ndata: two\n\n"
	for _, declared := range []bool{false, true} {
		t.Run(fmt.Sprintf("length declared %v", declared), func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if declared {
					w.Header().Set("Content-Length", fmt.Sprint(len(events)))
				}
				io.WriteString(w, events[:11])
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, events[11:])
			}))
			t.Cleanup(up.Close)
			defer close(release)
			g, _ := newGateway(t, route("sse", up.URL, "query:k"))
			srv, _ := front(t, g)
			resp, err := http.Get(srv.URL + "/gw/sse/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event: got %q, %v; want it before the stream ends", line, err)
			}
		})
	}
}

// TestStalledCaller: a caller that stops reading an answer is cut off
// once a write to it has waited WriteTimeout (the server's own write
// timeout is lifted for a call), so it does not hold the call and its
// upstream connection for good; a stream that is merely idle between
// writes for longer than that goes on, and ends whole.
func TestStalledCaller(t *testing.T) {
	const timeout = 200 * time.Millisecond
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/idle" {
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(3 * timeout)
			io.WriteString(w, "data: two\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(3 * timeout)
			return
		}
		io.CopyN(w, pattern{}, 1<<30)
	}))
	t.Cleanup(up.Close)
	g, _ := newGateway(t, route("big", up.URL, "query:k"))
	g.WriteTimeout = timeout
	srv, calls := front(t, g)

	resp, err := http.Get(srv.URL + "/gw/big/idle")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "data: one\n\ndata: two\n\n" {
		t.Errorf("idle stream: got %q, %v; want both events, whole", body, err)
	}
	if c := <-calls; c.Aborted {
		t.Error("idle stream: the call was aborted")
	}

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /gw/big/download HTTP/1.1\r\nHost: gateway\r\n\r\n") // and never read
	select {
	case c := <-calls:
		if !c.Aborted {
			t.Errorf("stalled caller: got a call that was not aborted, %d bytes out", c.BytesOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stalled caller: the call still runs after 20 s")
	}
}

// TestRotationInvisible: after the secret changes, the next call injects
// the new value; calls during the change all succeed.
func TestRotationInvisible(t *testing.T) {
	up, got := recorder(t, false)
	g, s := newGateway(t, route("rot", up.URL, "header:X-Key={{value}}"))
	srv, _ := front(t, g)
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 20 {
				s.mu.Lock()
				s.m["acme/prod/TOKEN"] = "rotated-value-0123456789"
				s.mu.Unlock()
			}
			resp, err := http.Get(srv.URL + "/gw/rot/x")
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a call failed during the rotation: %s", e)
	}
	for range 40 {
		if v := (<-got).header.Get("X-Key"); v != injectedValue && v != "rotated-value-0123456789" {
			t.Errorf("injected %q; want the old or the new value", v)
		}
	}
	resp, _ := get(t, srv.URL+"/gw/rot/x", nil)
	if v := (<-got).header.Get("X-Key"); resp.StatusCode != 200 || v != "rotated-value-0123456789" {
		t.Errorf("after the rotation: got %d, %q; want the new value", resp.StatusCode, v)
	}
}

// zeros is an endless reader of a repeating pattern.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return len(p), nil
}

// TestStreamGiB: a 1 GiB response and a 1 GiB request body pass through
// with the heap bounded (nothing buffered whole).
func TestStreamGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB")
	}
	size := 1 << 30
	if raceEnabled {
		size = 256 << 20 // still four times the heap bound below
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
			return
		}
		io.CopyN(w, pattern{}, int64(size))
	}))
	t.Cleanup(up.Close)
	g, _ := newGateway(t, route("big", up.URL, "query:k"))
	srv, calls := front(t, g)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var peak uint64
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapAlloc)
	}
	resp, err := http.Get(srv.URL + "/gw/big/download")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	buf := make([]byte, 1<<20)
	for i := 0; ; i++ {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if i%256 == 0 {
			sample()
		}
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	if n != int64(size) {
		t.Fatalf("downloaded %d bytes; want %d", n, size)
	}
	if c := <-calls; c.BytesOut != int64(size) {
		t.Errorf("BytesOut: got %d; want %d", c.BytesOut, size)
	}
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < size/len(buf); i++ {
			pw.Write(buf)
			if i%256 == 0 {
				sample()
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", srv.URL+"/gw/big/upload", pr)
	resp, body := do(t, req)
	if resp.StatusCode != 200 || body != fmt.Sprint(size) {
		t.Fatalf("upload: got %d %q; want %d bytes received", resp.StatusCode, body, size)
	}
	if c := <-calls; c.BytesIn.Load() != int64(size) {
		t.Errorf("BytesIn: got %d; want %d", c.BytesIn.Load(), size)
	}
	if grew := int64(peak) - int64(before.HeapAlloc); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB while moving 1 GiB each way; want under 64 MiB", grew>>20)
	}
}

// TestRouteCache: a route is read once while the clock stands still, and
// again when it moves.
func TestRouteCache(t *testing.T) {
	up, _ := recorder(t, false)
	m := routes{"a": route("a", up.URL, "query:k")}
	clock := &fakeClock{gen: 1}
	g := &gateway.Gateway{Routes: m, Secrets: &secrets{}, Clock: clock}
	r1, err := g.Route(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	m["a"] = route("a", up.URL, "query:other")
	if r2, _ := g.Route(t.Context(), "a"); r2 != r1 {
		t.Error("clock still: route read again; want the cached one")
	}
	clock.gen = 2
	if r3, _ := g.Route(t.Context(), "a"); r3 == r1 || r3.Inject != "query:other" {
		t.Errorf("clock moved: got %v; want the changed route", r3.Inject)
	}
	delete(m, "a")
	clock.gen = 3
	if _, err := g.Route(t.Context(), "a"); tokenward.ErrorCode(err) != tokenward.ENOTFOUND {
		t.Errorf("deleted: got %v; want ENOTFOUND", err)
	}
}

type fakeClock struct{ gen uint64 }

func (c *fakeClock) Generation() (uint64, bool) { return c.gen, true }

// TestTimeoutAndResponseHops: an upstream that does not answer within the
// route's timeout is a 504; hop-by-hop headers of an answer are not
// passed on.
func TestTimeoutAndResponseHops(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Header().Set("Connection", "X-Hop-Answer")
		w.Header().Set("X-Hop-Answer", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "1")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	defer close(release)
	rt := route("slow", up.URL, "query:k")
	rt.Timeout = 50 * time.Millisecond
	g, _ := newGateway(t, rt)
	srv, _ := front(t, g)
	resp, body := get(t, srv.URL+"/gw/slow/slow", nil)
	if resp.StatusCode != 504 || !strings.Contains(body, "in time") {
		t.Errorf("slow upstream: got %d %q; want 504", resp.StatusCode, body)
	}
	resp, _ = get(t, srv.URL+"/gw/slow/fast", nil)
	if resp.Header.Get("X-Hop-Answer") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "1" {
		t.Errorf("answer headers: got %v; want the hop-by-hop ones dropped, X-Kept kept", resp.Header)
	}
}

// TestSmallAnswers: an answer of known length up to 64 KiB is masked whole
// and sent with its masked length (not chunked), and when the call's audit
// (OnDone) fails, nothing of it reaches the caller.
func TestSmallAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body := "echo " + strings.TrimPrefix(r.Header.Get("Authorization"), "token ") + " end"
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			io.WriteString(w, body)
		}
	}))
	t.Cleanup(up.Close)
	g, _ := newGateway(t, route("small", up.URL, "header:Authorization=token {{value}}"))
	srv, _ := front(t, g)

	resp, body := get(t, srv.URL+"/gw/small/echo", nil)
	if body != "echo *** end" {
		t.Errorf("body: got %q; want the value masked", body)
	}
	if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 {
		t.Errorf("got Content-Length %d, Transfer-Encoding %v; want %d, none", resp.ContentLength, resp.TransferEncoding, len(body))
	}

	// The audit fails: the caller gets no answer, not a complete one.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, _ := g.Route(r.Context(), "small")
		c := &gateway.Call{Route: rt, Path: "/echo", OnDone: func(*gateway.Call) error { return fmt.Errorf("audit refused") }}
		g.Forward(w, r, c)
		if !c.Aborted {
			t.Errorf("a call whose OnDone failed is not aborted")
		}
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(failing.Close)
	if resp, err := http.Get(failing.URL + "/gw/small/echo"); err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("got %s %q (read error %v); want no answer", resp.Status, b, rerr)
	}
}
