// Package pgproxy is the database gateway: a PostgreSQL wire-protocol
// proxy that lets a client sign in with its tokenward token as the
// password and relays it to a route's upstream database, signed in there
// with the credentials of the route's secret, which the client never sees
// (docs/gateway-db.md).
package pgproxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/pgerr"
)

// Opener opens a route for a client: it authenticates the token, checks
// the grant gateway:<route> and returns the token, the route and the
// current value of the route's secret (core.Core.OpenDBRoute). It returns
// once ctx ends, which it does at the end of the startup phase. Its errors
// never hold the token or the value.
type Opener interface {
	OpenDBRoute(ctx context.Context, route, token, ip string) (*tokenward.Token, *tokenward.DBRoute, []byte, error)
}

// Rechecker is an Opener that says whether a session's token may still
// use its route (core.Core.RecheckDBRoute): nil, or why not. EUNAUTHORIZED
// (revoked, suspended, expired) and EFORBIDDEN (the grant is gone) end the
// token's open sessions; other errors (the store cannot be reached) leave
// them be.
type Rechecker interface {
	RecheckDBRoute(ctx context.Context, tokenID, route string) error
}

// Defaults of the Proxy's limits.
const (
	DefaultMaxSessions        = 100
	DefaultMaxStartups        = 256
	DefaultMaxStartupsPerAddr = 32
	DefaultStartupTimeout     = 10 * time.Second
	DefaultRecheckEvery       = time.Second
)

// Audit actions.
const (
	ActionConnect = "gateway.db.connect" // a session opened, or refused
	ActionSession = "gateway.db.session" // a session ended: duration and bytes
)

// Proxy serves the PostgreSQL wire protocol on a listener. Set its fields,
// then call Serve.
type Proxy struct {
	Opener Opener
	// TLSConfig, when set, is offered to clients that ask for TLS. Without
	// it only clients on loopback may sign in: the password is a token.
	TLSConfig *tls.Config
	// Audit records each session's opening (before the session is relayed:
	// when it fails, the session is refused) and end, and each refusal.
	Audit  func(ctx context.Context, e *tokenward.AuditEntry) error
	Logger *slog.Logger
	Now    func() time.Time
	// MaxSessions bounds the sessions served at once: a client whose token
	// was accepted takes one for the rest of its connection, and is refused
	// with 53300 when none is free. Clients not signed in yet take none, so
	// that they cannot lock signed-in clients out.
	MaxSessions int
	// MaxStartups bounds the connections in the startup phase (not signed
	// in yet: TLS handshake, startup message, password, token check; cancel
	// requests), and MaxStartupsPerAddr those of one source address (an
	// IPv6 client by its /64); a connection over either is refused with
	// 53300 as it is accepted.
	MaxStartups        int
	MaxStartupsPerAddr int
	// StartupTimeout bounds the startup phase, from accepting the
	// connection to the first relayed byte: the token check and the
	// upstream's sign-in run within it.
	StartupTimeout time.Duration
	// PeerID numbers this server among servers that serve the same routes
	// behind one address (1 to MaxPeerID; 0: it serves alone), and Peers
	// are the others' gateway addresses by number. A client sends a cancel
	// request on a connection of its own, which a load balancer may hand
	// to any of them: every process id a peer issues carries its number,
	// and a cancel request for another peer's session is passed on to that
	// peer (as PgBouncer's peering does), marked so that it is never passed
	// on again.
	PeerID int
	Peers  map[int]string
	// RecheckEvery is how often the open sessions' tokens are checked
	// again when the Opener is a Rechecker (default DefaultRecheckEvery):
	// a revoked token's sessions end within it, their running queries
	// cancelled.
	RecheckEvery time.Duration

	setup   sync.Once
	slots   chan struct{}
	mu      sync.Mutex
	cancels map[uint32]cancelKey  // proxy-issued process id -> the upstream's key
	starts  int                   // connections in the startup phase
	startBy map[string]int        // the same by tokenward.SourceKey of their source
	conns   map[net.Conn]struct{} // live client connections, closed at shutdown
	live    map[*session]*relayed // sessions being relayed, for the recheck
	wg      sync.WaitGroup        // connection goroutines
	active  atomic.Int64          // sessions being relayed (for tests and metrics)
}

// cancelKey is a proxy-issued BackendKeyData and where its cancel goes.
type cancelKey struct {
	secret []byte // what the client was given
	to     string // the upstream's address
	pid    uint32 // the upstream's process id
	key    []byte // the upstream's secret key
}

func (p *Proxy) init() {
	p.setup.Do(func() {
		if p.MaxSessions <= 0 {
			p.MaxSessions = DefaultMaxSessions
		}
		if p.StartupTimeout <= 0 {
			p.StartupTimeout = DefaultStartupTimeout
		}
		if p.Logger == nil {
			p.Logger = slog.New(slog.DiscardHandler)
		}
		if p.Now == nil {
			p.Now = time.Now
		}
		p.slots = make(chan struct{}, p.MaxSessions)
		if p.MaxStartups <= 0 {
			p.MaxStartups = DefaultMaxStartups
		}
		if p.MaxStartupsPerAddr <= 0 {
			p.MaxStartupsPerAddr = DefaultMaxStartupsPerAddr
		}
		p.startBy = map[string]int{}
		if p.RecheckEvery <= 0 {
			p.RecheckEvery = DefaultRecheckEvery
		}
		p.cancels = map[uint32]cancelKey{}
		p.conns = map[net.Conn]struct{}{}
		p.live = map[*session]*relayed{}
	})
}

// relayed is a session being relayed: what ending it takes.
type relayed struct {
	up    *upstream
	close func()
	once  sync.Once
	why   string // why the proxy ended it ("" if it did not)
}

// end closes both connections, the upstream's with a reset, then cancels
// the session's running query on the upstream (a query that keeps running
// would outlive its session on the upstream until it next wrote). The
// reset comes first so that the upstream runs nothing the client queued
// behind that query: once its socket is reset, the backend's next write
// (the cancelled query's error) fails and it exits, where after a mere
// close it would go on to read and run the queries already in its socket.
func (r *relayed) end(why string) {
	r.once.Do(func() {
		r.why = why
		reset(r.up.conn)
		r.close()
		sendCancel(r.up.cancelTo, cancelRequestCode, r.up.pid, r.up.key)
	})
}

// reset closes c with a TCP reset (SO_LINGER 0), below its TLS if any.
func reset(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// recheckLoop checks the open sessions' tokens every RecheckEvery until ctx
// ends, when the Opener can (Rechecker).
func (p *Proxy) recheckLoop(ctx context.Context) {
	rc, ok := p.Opener.(Rechecker)
	if !ok {
		return
	}
	t := time.NewTicker(p.RecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.recheck(ctx, rc)
		}
	}
}

// recheck ends the sessions whose token may no longer use their route:
// one check per token and route.
func (p *Proxy) recheck(ctx context.Context, rc Rechecker) {
	type key struct{ token, route string }
	p.mu.Lock()
	byKey := map[key][]*relayed{}
	for s, r := range p.live {
		k := key{s.tok.ID, s.route}
		byKey[k] = append(byKey[k], r)
	}
	p.mu.Unlock()
	for k, rs := range byKey {
		cctx, cancel := context.WithTimeout(ctx, p.RecheckEvery)
		err := rc.RecheckDBRoute(cctx, k.token, k.route)
		cancel()
		switch tokenward.ErrorCode(err) {
		case "":
		case tokenward.EUNAUTHORIZED, tokenward.EFORBIDDEN:
			p.Logger.Info("ending the sessions of a token that may no longer use the route", "route", k.route, "token", k.token, "sessions", len(rs), "reason", tokenward.ErrorMessage(err))
			for _, r := range rs {
				go r.end(tokenward.ErrorMessage(err))
			}
		default:
			p.Logger.Warn("cannot check a session's token again; the session goes on", "route", k.route, "token", k.token, "err", tokenward.ErrorMessage(err))
		}
	}
}

// Active returns how many sessions are being relayed.
func (p *Proxy) Active() int { return int(p.active.Load()) }

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and waits for their goroutines (each session's end is
// audited). It returns nil after ctx ended, else the accept error.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	p.init()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil // no more
		p.mu.Unlock()
	})
	defer stop()
	defer p.wg.Wait()
	// Each Serve rechecks (a Proxy may serve several listeners; a session
	// ended twice ends once), and stops doing so however it returns.
	rctx, stopRecheck := context.WithCancel(ctx)
	rechecked := make(chan struct{})
	go func() {
		defer close(rechecked)
		p.recheckLoop(rctx)
	}()
	defer func() { stopRecheck(); <-rechecked }()
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http
			// does, rather than stop serving.
			p.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s := &session{ip: hostOf(conn.RemoteAddr())}
		s.startKey = tokenward.SourceKey(s.ip)
		if !p.startUp(s.startKey) {
			// Over the limit: refused at once, without reading.
			p.Logger.Debug("too many connections signing in; refused", "source_ip", s.ip)
			conn.SetDeadline(time.Now().Add(time.Second))
			writeFatal(conn, "53300", "tokenward: too many database gateway connections signing in; try again later")
			conn.Close()
			continue
		}
		s.starting = true
		if !p.track(conn, true) {
			conn.Close()
			p.startedUp(s.startKey)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer conn.Close()
			defer p.track(conn, false)
			p.serveConn(ctx, conn, s)
		}()
	}
}

// startUp takes a place in the startup phase for a connection from key:
// false when there is none (MaxStartups, MaxStartupsPerAddr).
func (p *Proxy) startUp(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.starts >= p.MaxStartups || p.startBy[key] >= p.MaxStartupsPerAddr {
		return false
	}
	p.starts++
	p.startBy[key]++
	return true
}

// startedUp gives back the place startUp took.
func (p *Proxy) startedUp(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts--
	if p.startBy[key]--; p.startBy[key] <= 0 {
		delete(p.startBy, key)
	}
}

// track adds or removes a live connection; adding fails once shutdown
// began.
func (p *Proxy) track(conn net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, conn)
		return true
	}
	if p.conns == nil {
		return false
	}
	p.conns[conn] = struct{}{}
	return true
}

// session is one client's connection through the startup phase and relay.
type session struct {
	id    string // the audit entries' request id
	ip    string
	route string
	tok   *tokenward.Token

	startKey string // the source it counts against in the startup phase
	starting bool   // it holds a place in the startup phase (startUp)
	slot     bool   // it holds a session slot (p.slots)
}

// serveConn serves a connection accepted with a place in the startup
// phase (s.starting), and gives back its places before it returns: before
// the client sees the connection close, so that a client that reconnects
// at once is not refused over a session that has ended.
func (p *Proxy) serveConn(ctx context.Context, conn net.Conn, s *session) {
	defer func() {
		if s.starting {
			p.startedUp(s.startKey)
		}
		if s.slot {
			<-p.slots
		}
	}()
	start := p.Now()
	// One deadline for the whole startup phase: the client's messages, the
	// token check and the upstream's sign-in.
	deadline := time.Now().Add(p.StartupTimeout)
	conn.SetDeadline(deadline)
	sctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	s.id = newID()
	st, err := negotiate(conn, p.TLSConfig)
	if err != nil {
		if errors.Is(err, errProtocol) {
			to := conn // inside TLS once the client is
			if te := (*inTLSError)(nil); errors.As(err, &te) {
				to = te.conn
			}
			writeFatal(to, "08P01", "tokenward: protocol violation")
		}
		p.Logger.Debug("startup failed", "session", s.id, "source_ip", s.ip, "err", err)
		return
	}
	if st.cancel != nil {
		p.cancel(st.cancel, st.passedOn)
		return
	}
	client := st.conn
	if st.minor != 0 || len(st.unrecognized) > 0 {
		// This proxy speaks protocol 3.0 to both sides.
		slices.Sort(st.unrecognized)
		send(client, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: st.unrecognized})
	}
	s.route = st.params["user"]
	if tokenward.ValidateRouteName(s.route) != nil {
		writeFatal(client, "28000", "tokenward: the user name must be the name of a gateway route")
		return
	}
	if r := st.params["replication"]; r != "" && r != "false" && r != "off" && r != "no" && r != "0" {
		writeFatal(client, "28000", "tokenward: replication connections are not relayed")
		return
	}
	if !st.tls && !isLoopback(conn.RemoteAddr()) {
		p.refuse(ctx, s, tokenward.Errorf(tokenward.EFORBIDDEN, "TLS is required from a non-loopback address: the password is a token"))
		writeFatal(client, "28000", "tokenward: connect with TLS (sslmode=require): the password is a tokenward token")
		return
	}
	if err := send(client, &pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return
	}
	password, err := readPassword(client)
	if err != nil {
		if errors.Is(err, errProtocol) {
			writeFatal(client, "08P01", "tokenward: protocol violation")
		}
		return // io.EOF: psql asks for the password and comes back
	}
	up, err := p.open(sctx, s, st.params, password)
	if err != nil {
		// Past the deadline the client is still told why, briefly.
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		code, msg := fatalOf(err)
		writeFatal(client, code, msg)
		return
	}
	defer up.conn.Close()
	pid, secret := p.issueKey(up)
	defer p.dropKey(pid)
	msgs := []pgproto3.BackendMessage{&pgproto3.AuthenticationOk{}}
	for _, k := range slices.Sorted(maps.Keys(up.params)) {
		msgs = append(msgs, &pgproto3.ParameterStatus{Name: k, Value: up.params[k]})
	}
	msgs = append(msgs, &pgproto3.BackendKeyData{ProcessID: pid, SecretKey: secret}, &pgproto3.ReadyForQuery{TxStatus: up.txStatus})
	if err := send(client, msgs...); err != nil {
		p.ended(s, start, 0, 0, "")
		return
	}
	conn.SetDeadline(time.Time{})
	up.conn.SetDeadline(time.Time{})
	r := &relayed{up: up, close: func() { conn.Close(); up.conn.Close() }}
	p.mu.Lock()
	p.live[s] = r
	p.mu.Unlock()
	p.active.Add(1)
	in, out := relay(client, up.conn, r.close)
	p.active.Add(-1)
	p.mu.Lock()
	delete(p.live, s)
	p.mu.Unlock()
	r.once.Do(func() {}) // ended by either side now: no recheck sets why
	p.ended(s, start, in, out, r.why)
}

// open authenticates the client, takes a session slot, signs in to the
// upstream and audits the session's opening; the audit entry must be
// recorded for the session to go on. ctx ends with the startup phase.
func (p *Proxy) open(ctx context.Context, s *session, params map[string]string, password string) (*upstream, error) {
	tok, route, value, err := p.Opener.OpenDBRoute(ctx, s.route, password, s.ip)
	s.tok = tok
	if err != nil {
		clear(value)
		if c := tokenward.ErrorCode(err); errors.Is(ctx.Err(), context.DeadlineExceeded) && (c == tokenward.EINTERNAL || c == tokenward.EUNAVAILABLE) {
			err = errStartupTimeout // cut by the deadline, not a verdict on the token
		}
		p.refuse(ctx, s, err)
		return nil, err
	}
	if ctx.Err() != nil {
		// An Opener that returned late: no upstream sign-in past the
		// deadline.
		clear(value)
		p.refuse(ctx, s, errStartupTimeout)
		return nil, errStartupTimeout
	}
	// Signed in: the client leaves the startup phase's budget for the
	// sessions'.
	select {
	case p.slots <- struct{}{}:
		s.slot = true
	default:
		clear(value)
		p.Logger.Warn("at the session limit; a signed-in client is refused", "route", s.route, "session", s.id, "max_sessions", p.MaxSessions)
		p.refuse(ctx, s, errTooManySessions)
		return nil, errTooManySessions
	}
	p.startedUp(s.startKey)
	s.starting = false
	cfg, err := upstreamConfig(route, value, params)
	clear(value)
	if err != nil {
		p.refuse(ctx, s, err)
		return nil, err
	}
	up, err := dial(ctx, cfg)
	cfg.Password = ""
	if err != nil {
		// Described by its message and SQLSTATE (or the host), never by
		// err.Error(), which may quote the connection settings.
		p.Logger.Warn("upstream sign-in failed", "route", s.route, "session", s.id, "err", pgerr.Error(err))
		uerr := tokenward.Errorf(tokenward.EUNAVAILABLE, "upstream: %s", pgerr.Error(err))
		p.refuse(ctx, s, uerr)
		return nil, errUpstream
	}
	if err := p.record(ctx, s, nil, map[string]string{"upstream": route.Upstream}); err != nil {
		up.conn.Close()
		p.Logger.Error("audit record failed; refusing session", "route", s.route, "session", s.id, "err", err)
		return nil, errAuditRefused
	}
	return up, nil
}

var (
	errStartupTimeout  = tokenward.Errorf(tokenward.EUNAVAILABLE, "the sign-in took longer than the startup timeout")
	errTooManySessions = tokenward.Errorf(tokenward.ERATELIMITED, "too many database gateway sessions; try again later")
	errUpstream        = tokenward.Errorf(tokenward.EUNAVAILABLE, "cannot sign in to the route's upstream database")
	errAuditRefused    = tokenward.Errorf(tokenward.EUNAVAILABLE, "the audit log cannot record this session; refused")
)

// fatalOf is the SQLSTATE and message a refused client reads.
func fatalOf(err error) (string, string) {
	msg := "tokenward: " + tokenward.ErrorMessage(err)
	switch tokenward.ErrorCode(err) {
	case tokenward.EUNAUTHORIZED:
		return "28P01", msg
	case tokenward.EFORBIDDEN, tokenward.ENOTFOUND, tokenward.EINVALID:
		return "28000", msg
	case tokenward.EUNAVAILABLE:
		return "08006", msg
	case tokenward.ERATELIMITED:
		return "53300", msg // as PostgreSQL refuses a connection over a limit
	}
	return "XX000", "tokenward: internal error"
}

// refuse audits a refused session.
func (p *Proxy) refuse(ctx context.Context, s *session, err error) {
	if tokenward.ErrorCode(err) == tokenward.EINTERNAL {
		p.Logger.Error("session failed", "route", s.route, "session", s.id, "err", err)
	}
	if err := p.record(ctx, s, err, nil); err != nil {
		p.Logger.Error("audit record failed", "route", s.route, "session", s.id, "err", err)
	}
}

// statusOf is the HTTP status an API request refused with err would have
// had: audit entries carry it so that the monitor reads a refused session
// as it reads a refused request (a revoked token presented is a leak
// signal wherever it is presented).
func statusOf(err error) int {
	switch tokenward.ErrorCode(err) {
	case "":
		return 200
	case tokenward.EINVALID:
		return 400
	case tokenward.EUNAUTHORIZED:
		return 401
	case tokenward.EFORBIDDEN:
		return 403
	case tokenward.ENOTFOUND:
		return 404
	case tokenward.ERATELIMITED:
		return 429
	case tokenward.EUNAVAILABLE:
		return 503
	}
	return 500
}

// ended audits a session's end with its duration and bytes: in from the
// client, out to it; why, when the proxy ended it (meta.ended_by).
func (p *Proxy) ended(s *session, start time.Time, in, out int64, why string) {
	meta := map[string]string{
		"duration_ms": strconv.FormatInt(p.Now().Sub(start).Milliseconds(), 10),
		"bytes_in":    strconv.FormatInt(in, 10),
		"bytes_out":   strconv.FormatInt(out, 10),
	}
	if why != "" {
		meta["ended_by"] = why
	}
	e := p.entry(s, ActionSession, nil, meta)
	if p.Audit != nil {
		if err := p.Audit(context.Background(), e); err != nil {
			p.Logger.Error("audit record of a session's end failed", "route", s.route, "session", s.id, "err", err)
		}
	}
	p.Logger.Debug("session ended", "route", s.route, "session", s.id, "bytes_in", in, "bytes_out", out)
}

// record audits a session's opening (err nil) or refusal.
func (p *Proxy) record(ctx context.Context, s *session, err error, meta map[string]string) error {
	if p.Audit == nil {
		return nil
	}
	return p.Audit(context.WithoutCancel(ctx), p.entry(s, ActionConnect, err, meta))
}

// entry is an audit entry of s; err is the refusal, nil for an allowed
// action. An internal error's reason is generic.
func (p *Proxy) entry(s *session, action string, err error, meta map[string]string) *tokenward.AuditEntry {
	outcome, reason := tokenward.OutcomeAllowed, ""
	switch tokenward.ErrorCode(err) {
	case "":
	case tokenward.EUNAUTHORIZED, tokenward.EFORBIDDEN, tokenward.ERATELIMITED:
		outcome, reason = tokenward.OutcomeDenied, tokenward.ErrorMessage(err)
	case tokenward.EINTERNAL:
		outcome, reason = tokenward.OutcomeError, "internal error"
	default:
		outcome, reason = tokenward.OutcomeError, tokenward.ErrorMessage(err)
	}
	e := &tokenward.AuditEntry{Time: p.Now().UTC(), RequestID: s.id, Action: action, Outcome: outcome, Reason: reason,
		Status: statusOf(err), SourceIP: s.ip, Meta: meta}
	if tokenward.ValidateRouteName(s.route) == nil {
		e.Resource = "gateway:" + s.route
	}
	if s.tok != nil {
		e.TokenID, e.TokenName, e.CI = s.tok.ID, s.tok.Name, s.tok.CI
	}
	return e
}

// MaxPeerID is the highest Proxy.PeerID: a peer's number takes the top
// bits of the process ids it issues, below the sign bit (PostgreSQL's
// process ids are positive Int32s).
const (
	MaxPeerID = 1<<(31-peerShift) - 1
	peerShift = 23
)

// issueKey gives the session a BackendKeyData of the proxy's own and
// remembers the upstream's behind it: a client never learns the upstream's
// process id or key.
func (p *Proxy) issueKey(up *upstream) (uint32, []byte) {
	secret := make([]byte, 4)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var b [4]byte
		rand.Read(b[:])
		rand.Read(secret)
		pid := binary.BigEndian.Uint32(b[:])
		if p.PeerID > 0 {
			pid = uint32(p.PeerID)<<peerShift | pid&(1<<peerShift-1) // #nosec G115 -- PeerID is checked to be 1 to MaxPeerID
		}
		if _, taken := p.cancels[pid]; pid != 0 && !taken {
			p.cancels[pid] = cancelKey{secret: secret, to: up.cancelTo, pid: up.pid, key: up.key}
			return pid, secret
		}
	}
}

func (p *Proxy) dropKey(pid uint32) {
	p.mu.Lock()
	delete(p.cancels, pid)
	p.mu.Unlock()
}

// cancel passes a client's cancel request on to the upstream of the
// session it names, when its key is the one the proxy issued, or, when
// the session is another peer's, to that peer (unless the request was
// passed on by a peer already).
func (p *Proxy) cancel(req *pgproto3.CancelRequest, passedOn bool) {
	if owner := int(req.ProcessID >> peerShift); p.PeerID > 0 && owner != p.PeerID {
		addr, ok := p.Peers[owner]
		if passedOn || !ok {
			p.Logger.Debug("cancel request for no session of this server or its peers", "peer", owner, "passed_on", passedOn)
			return
		}
		if err := sendCancel(addr, passedOnCancelCode, req.ProcessID, req.SecretKey); err != nil {
			p.Logger.Warn("cancel request: cannot pass it on to the peer", "peer", owner, "err", err)
		}
		return
	}
	p.mu.Lock()
	k, ok := p.cancels[req.ProcessID]
	p.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare(k.secret, req.SecretKey) != 1 {
		p.Logger.Debug("cancel request for no session")
		return
	}
	if err := sendCancel(k.to, cancelRequestCode, k.pid, k.key); err != nil {
		p.Logger.Warn("cancel request: cannot send it upstream", "err", err)
	}
}

// sendCancel sends a cancel request (code: cancelRequestCode, or
// passedOnCancelCode to a peer) on a connection of its own to addr, and
// waits for addr to close it: it has read the request then.
func sendCancel(addr string, code, pid uint32, key []byte) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := binary.BigEndian.AppendUint32(nil, uint32(12+len(key))) // #nosec G115 -- a key of 4 bytes
	buf = binary.BigEndian.AppendUint32(buf, code)
	buf = binary.BigEndian.AppendUint32(buf, pid)
	if _, err := c.Write(append(buf, key...)); err != nil {
		return err
	}
	io.Copy(io.Discard, c)
	return nil
}

// relay copies bytes both ways until either side closes, then closes both
// (closeBoth closes the underlying connections: a TLS Close could wait on
// a stalled peer); in is what the client sent, out what it was sent.
func relay(client, upstream net.Conn, closeBoth func()) (in, out int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		in, _ = io.Copy(upstream, client)
		closeBoth()
	}()
	out, _ = io.Copy(client, upstream)
	closeBoth()
	<-done
	return in, out
}

// send writes msgs to w in one write.
func send(w io.Writer, msgs ...pgproto3.BackendMessage) error {
	var buf []byte
	for _, m := range msgs {
		var err error
		if buf, err = m.Encode(buf); err != nil {
			return err
		}
	}
	_, err := w.Write(buf)
	return err
}

// writeFatal sends a FATAL error; the caller closes the connection.
func writeFatal(w io.Writer, code, msg string) {
	send(w, &pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func isLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	ip := net.ParseIP(hostOf(a))
	return ip != nil && ip.IsLoopback()
}
