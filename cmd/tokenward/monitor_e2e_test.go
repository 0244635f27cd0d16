//go:build !tokenward_client

package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward/internal/webhook"
)

// cmdHooks is the testscript command "hooks": signed-webhook receivers in
// the test process, on loopback, for the real server to deliver alerts and
// change events to.
//
//	hooks start NAME SECRETFILE   start a receiver; sets NAME_URL. Each body whose
//	                              signature verifies is appended as a line to
//	                              $WORK/NAME.jsonl; a bad signature fails the script
//	hooks wait NAME REGEXP [N]    wait (10 s at most) until N (default 1) lines of
//	                              NAME.jsonl match REGEXP
//	hooks leak TOKENFILE          report the token in TOKENFILE as leaked
//	                              (POST /v1/tokens/report-leak, no credentials); prints the answer
//	hooks env VAR FILE            set VAR to FILE's content, trimmed
//	hooks grep VAR REGEXP FILE    set VAR to the first submatch of REGEXP in FILE
//	hooks sleep DURATION          wait (for a background stream to connect)
func cmdHooks(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: hooks start|wait|leak ...")
	}
	switch args[0] {
	case "start":
		if len(args) != 3 {
			ts.Fatalf("usage: hooks start NAME SECRETFILE")
		}
		name, secret := args[1], []byte(strings.TrimSpace(ts.ReadFile(args[2])))
		out := ts.MkAbs(name + ".jsonl")
		var mu sync.Mutex
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if err := webhook.Verify(secret, r.Header, b, time.Now(), 5*time.Minute); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				os.WriteFile(ts.MkAbs(name+".bad"), b, 0o600)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			f.Write(append(bytes.ReplaceAll(b, []byte("\n"), nil), '\n'))
			f.Close()
		}))
		ts.Defer(srv.Close)
		ts.Setenv(name+"_URL", srv.URL)
	case "wait":
		if len(args) < 3 || len(args) > 4 {
			ts.Fatalf("usage: hooks wait NAME REGEXP [N]")
		}
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		want := 1
		if len(args) == 4 {
			want, err = strconv.Atoi(args[3])
			ts.Check(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		got := 0
		for time.Now().Before(deadline) {
			if _, err := os.Stat(ts.MkAbs(args[1] + ".bad")); err == nil {
				ts.Fatalf("%s received a delivery whose signature does not verify", args[1])
			}
			b, _ := os.ReadFile(ts.MkAbs(args[1] + ".jsonl"))
			got = 0
			for _, line := range strings.Split(string(b), "\n") {
				if re.MatchString(line) {
					got++
				}
			}
			if got >= want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		ts.Fatalf("%s: got %d deliveries matching %s; want %d", args[1], got, args[2], want)
	case "leak":
		if len(args) != 2 {
			ts.Fatalf("usage: hooks leak TOKENFILE")
		}
		body := `{"token":"` + strings.TrimSpace(ts.ReadFile(args[1])) + `"}`
		resp, err := http.Post(ts.Getenv("TOKENWARD_ADDR")+"/v1/tokens/report-leak", "application/json", strings.NewReader(body))
		ts.Check(err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ts.Stdout().Write([]byte(resp.Status + " " + string(b)))
	case "grep":
		if len(args) != 4 {
			ts.Fatalf("usage: hooks grep VAR REGEXP FILE")
		}
		re, err := regexp.Compile(args[2])
		ts.Check(err)
		m := re.FindStringSubmatch(ts.ReadFile(args[3]))
		if len(m) < 2 {
			ts.Fatalf("%s: no match for %s", args[3], args[2])
		}
		ts.Setenv(args[1], m[1])
	case "sleep":
		// Only to let a background stream connect: nothing to poll for.
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		time.Sleep(d)
	case "env":
		if len(args) != 3 {
			ts.Fatalf("usage: hooks env VAR FILE")
		}
		ts.Setenv(args[1], strings.TrimSpace(ts.ReadFile(args[2])))
	default:
		ts.Fatalf("hooks %s: unknown subcommand", args[0])
	}
}
