//go:build !tokenward_client

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/sqlite"
	"github.com/tokenward/tokenward/internal/webhook"
	_ "modernc.org/sqlite"
)

// auditsql DBFILE SQL... runs statements on the real SQLite file, as an
// attacker with file access would (tampering tests).
func cmdAuditSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: auditsql DBFILE SQL...")
	}
	// One transaction: the server's audit ingester writes in the
	// background, and must not see a table half rebuilt.
	db, err := sql.Open("sqlite", "file:"+ts.MkAbs(args[0])+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		ts.Fatalf("%v", err)
	}
	for _, q := range args[1:] {
		if _, err = tx.Exec(q); err != nil {
			err = fmt.Errorf("%s: %w", q, err)
			break
		}
	}
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback()
	}
	if (err != nil) != neg {
		ts.Fatalf("auditsql: %v", err)
	}
}

// auditHookReceiver is a webhook receiver that can be started late (the
// receiver is down until `auditrecv up`).
type auditHookReceiver struct {
	mu     sync.Mutex
	secret []byte
	seqs   map[int64]int
	bodies [][]byte
	bad    int
}

var (
	auditHooksMu sync.Mutex
	auditHooks   = map[*testscript.TestScript]map[string]*auditHookReceiver{}
)

// auditrecv port VAR: set VAR to a free loopback port (nothing listens yet).
// auditrecv up NAME PORT SECRETFILE: start receiving signed batches on PORT.
// auditrecv wait NAME DBFILE: wait until every entry in the store arrived.
// auditrecv dump NAME FILE: write every received body to FILE.
func cmdAuditRecv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: auditrecv port|up|wait|dump ...")
	}
	auditHooksMu.Lock()
	if auditHooks[ts] == nil {
		auditHooks[ts] = map[string]*auditHookReceiver{}
	}
	recvs := auditHooks[ts]
	auditHooksMu.Unlock()
	switch args[0] {
	case "port":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ts.Fatalf("%v", err)
		}
		ts.Setenv(args[1], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		ln.Close()
	case "up":
		if len(args) != 4 {
			ts.Fatalf("usage: auditrecv up NAME PORT SECRETFILE")
		}
		secret := []byte(strings.TrimSpace(ts.ReadFile(args[3])))
		h := &auditHookReceiver{secret: secret, seqs: map[int64]int{}}
		auditHooksMu.Lock()
		recvs[args[1]] = h
		auditHooksMu.Unlock()
		ln, err := net.Listen("tcp", "127.0.0.1:"+args[2])
		if err != nil {
			ts.Fatalf("%v", err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		ts.Defer(func() { srv.Close() })
	case "wait":
		h := recvs[args[1]]
		if h == nil || len(args) != 3 {
			ts.Fatalf("usage: auditrecv wait NAME DBFILE (after up)")
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			missing := h.missing(ts, ts.MkAbs(args[2]))
			if missing == 0 {
				h.mu.Lock()
				ts.Logf("webhook %s: %d entries delivered, %d bad requests", args[1], len(h.seqs), h.bad)
				bad := h.bad
				h.mu.Unlock()
				if bad > 0 {
					ts.Fatalf("webhook %s got %d requests with a bad signature or body", args[1], bad)
				}
				return
			}
			if time.Now().After(deadline) {
				ts.Fatalf("webhook %s: %d entries never arrived", args[1], missing)
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "dump":
		h := recvs[args[1]]
		if h == nil || len(args) != 3 {
			ts.Fatalf("usage: auditrecv dump NAME FILE (after up)")
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		var all []byte
		for _, b := range h.bodies {
			all = append(append(all, b...), '\n')
		}
		if err := os.WriteFile(ts.MkAbs(args[2]), all, 0o600); err != nil {
			ts.Fatalf("%v", err)
		}
	default:
		ts.Fatalf("auditrecv: unknown subcommand %s", args[0])
	}
}

func (h *auditHookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify(h.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var batch struct {
		Entries []*tokenward.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		h.bad++
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	for _, e := range batch.Entries {
		if audit.HashEntry(e) != e.Hash {
			h.bad++
		}
		h.seqs[e.Seq]++
	}
	h.bodies = append(h.bodies, body)
}

// missing counts entries of the store the receiver has not seen.
func (h *auditHookReceiver) missing(ts *testscript.TestScript, dbPath string) int {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&mode=ro")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq FROM audit_entries`)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer rows.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for rows.Next() {
		var seq int64
		rows.Scan(&seq)
		if h.seqs[seq] == 0 {
			n++
		}
	}
	return n
}

// auditsyslog VAR FILE listens for syslog datagrams on a free loopback UDP
// port, sets VAR to udp:ADDR and appends every message to FILE.
func cmdAuditSyslog(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: auditsyslog VAR FILE")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	f, err := os.OpenFile(ts.MkAbs(args[1]), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Setenv(args[0], "udp:"+pc.LocalAddr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.Write(append(buf[:n:n], '\n'))
		}
	}()
	ts.Defer(func() { pc.Close(); <-done; f.Close() })
}

// auditcount FILE MIN fails unless FILE holds at least MIN lines.
func cmdAuditCount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: auditcount FILE MIN")
	}
	want, _ := strconv.Atoi(args[1])
	got := strings.Count(ts.ReadFile(args[0]), "\n")
	if (got >= want) == neg {
		ts.Fatalf("%s has %d lines; want at least %d", args[0], got, want)
	}
}

// auditedit FILE changes the outcome of entry 2 in an export file, as
// someone editing a copy would.
func cmdAuditEdit(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: auditedit FILE")
	}
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	edited := false
	for i, l := range lines {
		if strings.HasPrefix(l, `{"entry":{"seq":2,`) {
			lines[i] = strings.Replace(l, `"outcome":"allowed"`, `"outcome":"denied"`, 1)
			edited = lines[i] != l
		}
	}
	if !edited {
		ts.Fatalf("auditedit: no allowed entry 2 in %s", args[0])
	}
	if err := os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		ts.Fatalf("%v", err)
	}
}

// auditnoleak VALUEFILE PATH... is noleak with the value read from a file
// (a token printed by the CLI).
func cmdAuditNoLeak(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: auditnoleak VALUEFILE PATH...")
	}
	v := strings.TrimSpace(ts.ReadFile(args[0]))
	if len(v) < 8 {
		ts.Fatalf("auditnoleak: %s holds no value", args[0])
	}
	cmdNoLeak(ts, neg, append([]string{v}, args[1:]...))
}

// auditwaitfor DBFILE MIN CONDITION waits (up to 60 s) until at least MIN
// audit entries match the SQL condition: a script's way to know a
// background command got as far as a request. Negated, it checks once that
// fewer than MIN match. MIN "none" waits until no entry matches.
func cmdAuditWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: auditwaitfor DBFILE MIN CONDITION")
	}
	none := args[1] == "none" // wait until no entry matches (one deleted in the background)
	want, err := strconv.Atoi(args[1])
	if err != nil && !none {
		ts.Fatalf("auditwaitfor: MIN %q: %v", args[1], err)
	}
	db, err := sql.Open("sqlite", "file:"+ts.MkAbs(args[0])+"?_pragma=busy_timeout(10000)&mode=ro")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM audit_entries WHERE ` + args[2]).Scan(&n); err != nil {
			ts.Fatalf("auditwaitfor: %v", err)
		}
		if neg {
			// ! auditwaitfor: fewer than MIN match now (no waiting).
			if n >= want {
				ts.Fatalf("auditwaitfor: %d entries match %s; want fewer than %d", n, args[2], want)
			}
			return
		}
		if none && n == 0 || !none && n >= want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("auditwaitfor: %d entries match %s; want %d", n, args[2], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditget URL FILE writes the body of GET URL to FILE (for /metrics).
func cmdAuditGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: auditget URL FILE")
	}
	resp, err := http.Get(args[0])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if (resp.StatusCode != 200) != neg {
		ts.Fatalf("GET %s: %s", args[0], resp.Status)
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), b, 0o600); err != nil {
		ts.Fatalf("%v", err)
	}
}

// auditold DATADIR N: record N entries dated 400 days ago at the start of
// the data directory's trail, signed with its audit key, a checkpoint every
// 5: the trail of an install that has run for a long time (retention).
// The server must not be running.
func cmdAuditOld(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: auditold DATADIR N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	dir := ts.MkAbs(args[0])
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, auditKeyFileName))
	ts.Check(err)
	signer, err := audit.NewSigner(key)
	ts.Check(err)
	db := sqlite.NewDB(filepath.Join(dir, dbFileName))
	ts.Check(db.Open())
	defer db.Close()
	ctx := context.Background()
	b := audit.NewBroker(db, signer)
	b.CheckpointEvery = 5
	ts.Check(b.Open(ctx))
	then := time.Now().Add(-400 * 24 * time.Hour)
	for i := range n {
		ts.Check(b.Record(ctx, &tokenward.AuditEntry{Time: then.Add(time.Duration(i) * time.Second), Action: "secret.read",
			Resource: "payments/prod/OLD", Outcome: tokenward.OutcomeAllowed, Status: 200}))
	}
	ts.Check(b.Close(ctx))
}
