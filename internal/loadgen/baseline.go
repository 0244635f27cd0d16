package loadgen

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"time"
)

// Baseline is a bare net/http handler answering 100 bytes to every request
// on loopback: what this machine's net/http and the benchmark's own client
// manage with no work behind them, the yardstick of --baseline.
type Baseline struct {
	URL string
	srv *http.Server
}

// StartBaseline starts the bare handler on a free loopback port.
func StartBaseline() (*Baseline, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := bytes.Repeat([]byte("x"), 100)
	b := &Baseline{URL: "http://" + ln.Addr().String() + "/", srv: &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
	}}
	go b.srv.Serve(ln)
	return b, nil
}

// Mix is the one-operation mix that drives the handler.
func (b *Baseline) Mix() Mix { return Mix{{OpBaseline, 1}} }

// Builders returns the Builder of OpBaseline: a GET of the handler.
func (b *Baseline) Builders() map[Op]Builder {
	return map[Op]Builder{OpBaseline: func(int, uint64) (*http.Request, error) {
		return http.NewRequest("GET", b.URL, nil)
	}}
}

// Close stops the handler.
func (b *Baseline) Close() error {
	if err := b.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
