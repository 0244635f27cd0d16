//go:build !tokenward_client

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/audit"
	"github.com/tokenward/tokenward/internal/httpapi"
)

// auditConfig is the audit trail's and metrics' server configuration.
type auditConfig struct {
	File              string
	FileMaxMB         int
	FileKeep          int
	Stdout            bool
	Webhook           string
	WebhookSecretFile string
	Syslog            string
	CheckpointEvery   int64
	MetricsAddr       string
	PProf             bool          // net/http/pprof on the metrics listener
	Sync              string        // "journal", "normal" or "full"; empty: journal on SQLite, normal on PostgreSQL
	SyncInterval      time.Duration // zero: audit.DefaultJournalSyncEvery
	IngestDelay       time.Duration // zero: audit.DefaultIngestDelay
	Retention         string        // "0": keep every entry
	retention         time.Duration // Retention, parsed by Validate
}

// auditPruneEvery is how often the leader applies --audit-retention.
const auditPruneEvery = time.Hour

// Validate checks the flags before anything starts.
func (c *auditConfig) Validate() error {
	if c.FileMaxMB < 1 || c.FileMaxMB > 1<<20 {
		return usageError("--audit-file-max-mb must be from 1 to 1048576")
	}
	if c.FileKeep < 0 || c.FileKeep > 1000 {
		return usageError("--audit-file-keep must be from 0 to 1000")
	}
	switch cmp.Or(c.Sync, "journal") {
	case "journal", "normal", "full":
	default:
		return usageError("--audit-sync must be journal, normal or full")
	}
	if c.SyncInterval != 0 && (c.SyncInterval < time.Millisecond || c.SyncInterval > time.Second) {
		return usageError("--audit-sync-interval must be from 1ms to 1s")
	}
	if c.IngestDelay != 0 && (c.IngestDelay < time.Millisecond || c.IngestDelay > 10*time.Second) {
		return usageError("--audit-ingest-delay must be from 1ms to 10s")
	}
	if c.CheckpointEvery < 1 {
		return usageError("--audit-checkpoint-every must be 1 or more")
	}
	c.retention = 0
	if c.Retention != "0" && c.Retention != "" {
		d, err := parseDuration(c.Retention)
		if err != nil {
			return usageError("--audit-retention: %v", err)
		}
		if d < 24*time.Hour {
			return usageError("--audit-retention must be 1d or more, or 0 to keep every entry")
		}
		c.retention = d
	}
	if (c.Webhook == "") != (c.WebhookSecretFile == "") {
		return usageError("--audit-webhook and --audit-webhook-secret-file go together")
	}
	if c.Webhook != "" {
		// The URL may hold a credential: never echo it.
		if !strings.HasPrefix(c.Webhook, "https://") && !strings.HasPrefix(c.Webhook, "http://") {
			return usageError("--audit-webhook: want an http(s) URL")
		}
	}
	if c.Syslog != "" {
		network, addr, ok := strings.Cut(c.Syslog, ":")
		if !ok || addr == "" {
			return usageError("--audit-syslog %q: want network:address, e.g. udp:127.0.0.1:514 or unixgram:/dev/log", c.Syslog)
		}
		switch network {
		case "udp", "tcp", "unix", "unixgram":
		default:
			return usageError("--audit-syslog: network must be udp, tcp, unix or unixgram")
		}
	}
	if c.PProf && c.MetricsAddr == "" {
		return usageError("--pprof needs --metrics-addr: profiles are served on the metrics listener, never on the API address")
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return usageError("--metrics-addr %q: want host:port", c.MetricsAddr)
		}
	}
	return nil
}

// auditServerFeature keeps the tamper-evident audit trail (the database is
// the primary sink: a request whose entry it does not store is refused) and
// the Prometheus metrics. It runs first, so every later feature finds the
// audit hook and the registry in place.
func auditServerFeature(m *Main, f *pflag.FlagSet) (func(*serverConfig) error, func(context.Context, *serverRun) error) {
	ac := auditConfig{FileMaxMB: 100, FileKeep: 5, CheckpointEvery: audit.DefaultCheckpointEvery,
		SyncInterval: audit.DefaultJournalSyncEvery, IngestDelay: audit.DefaultIngestDelay, Retention: "0"}
	f.StringVar(&ac.Sync, "audit-sync", ac.Sync, "where an audit entry is before the answer: journal (appended to the audit journal, in the database within --audit-ingest-delay; SQLite only), normal (committed to the database) or full (committed and fsynced); journal and normal fsync within --audit-sync-interval (default journal on SQLite, normal on PostgreSQL)")
	f.DurationVar(&ac.SyncInterval, "audit-sync-interval", ac.SyncInterval, "with --audit-sync journal or normal, the longest an entry waits for its fsync (1ms to 1s)")
	f.DurationVar(&ac.IngestDelay, "audit-ingest-delay", ac.IngestDelay, "with --audit-sync journal, how long journal entries gather before one database commit stores them (1ms to 10s)")
	f.StringVar(&ac.File, "audit-file", "", "also write audit entries to this JSON-lines file (rotated by size)")
	f.IntVar(&ac.FileMaxMB, "audit-file-max-mb", ac.FileMaxMB, "rotate the audit file at this size in MiB")
	f.IntVar(&ac.FileKeep, "audit-file-keep", ac.FileKeep, "rotated audit files to keep")
	f.BoolVar(&ac.Stdout, "audit-stdout", false, "also write audit entries to stdout, one JSON object per line")
	f.StringVar(&ac.Webhook, "audit-webhook", "", "also POST audit entries in signed batches to this URL (buffered on disk while it is down)")
	f.StringVar(&ac.WebhookSecretFile, "audit-webhook-secret-file", "", "file holding the HMAC key that signs webhook batches")
	f.StringVar(&ac.Syslog, "audit-syslog", "", "also send audit entries to syslog (RFC 5424) at network:address, e.g. udp:127.0.0.1:514")
	f.StringVar(&ac.Retention, "audit-retention", ac.Retention, "delete audit entries older than this (e.g. 400d, at least 1d), up to the newest signed checkpoint among them, recording each deletion in the trail first; 0 keeps every entry")
	f.Int64Var(&ac.CheckpointEvery, "audit-checkpoint-every", ac.CheckpointEvery, "sign a checkpoint of the audit chain every N entries (and at shutdown)")
	f.StringVar(&ac.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this separate address (e.g. 127.0.0.1:9464); off when empty")
	f.BoolVar(&ac.PProf, "pprof", false, "also serve Go's profiler (net/http/pprof, /debug/pprof/) on the --metrics-addr listener")
	var early auditChecked
	check := func(cfg *serverConfig) (err error) {
		early, err = ac.check(cfg)
		return err
	}
	return check, func(ctx context.Context, r *serverRun) error {
		return startAudit(ctx, m, r, &ac, early)
	}
}

// auditChecked is what the audit feature's check read and worked out from
// its flags, for its start.
type auditChecked struct {
	sync          string // --audit-sync for the storage
	webhookSecret []byte // --audit-webhook-secret-file's key
}

// check checks the flags before the server opens anything, with what they
// need of the server's configuration and files.
func (c *auditConfig) check(cfg *serverConfig) (auditChecked, error) {
	var out auditChecked
	if err := c.Validate(); err != nil {
		return out, err
	}
	sync, err := auditSyncFor(cfg.Storage.isPostgres(), c.Sync)
	if err != nil {
		return out, err
	}
	out.sync = sync
	if c.Webhook != "" {
		secret, err := os.ReadFile(c.WebhookSecretFile)
		if err != nil {
			return out, fmt.Errorf("--audit-webhook-secret-file: %w", err)
		}
		secret = []byte(strings.TrimSpace(string(secret)))
		if len(secret) < 16 {
			return out, usageError("--audit-webhook-secret-file: the key must have 16 bytes or more")
		}
		out.webhookSecret = secret
	}
	return out, nil
}

func startAudit(ctx context.Context, m *Main, r *serverRun, ac *auditConfig, early auditChecked) error {
	log := r.logger.WithGroup("audit")
	sync := early.sync
	key, err := audit.LoadOrCreateKey(filepath.Join(r.cfg.DataDir, auditKeyFileName))
	if err != nil {
		return err
	}
	signer, err := audit.NewSigner(key)
	if err != nil {
		return err
	}
	if err := sameAuditKey(ctx, r, signer); err != nil {
		return err
	}
	var sinks []audit.Sink
	if ac.File != "" {
		// Fail at start, not by dropping every entry later.
		f, err := os.OpenFile(ac.File, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("--audit-file: %w", err)
		}
		f.Close()
		fs := audit.NewFileSink(ac.File)
		fs.MaxBytes, fs.Keep = int64(ac.FileMaxMB)<<20, ac.FileKeep
		sinks = append(sinks, fs)
	}
	if ac.Stdout {
		sinks = append(sinks, audit.NewWriterSink("stdout", m.Stdout))
	}
	if ac.Webhook != "" {
		wh := audit.NewWebhookSink(ac.Webhook, early.webhookSecret, filepath.Join(r.cfg.DataDir, "audit-webhook"))
		wh.Logger = log
		if err := wh.Open(); err != nil {
			return err
		}
		sinks = append(sinks, wh)
	}
	if ac.Syslog != "" {
		network, addr, _ := strings.Cut(ac.Syslog, ":")
		sl, err := audit.NewSyslogSink(network, addr)
		if err != nil {
			return err
		}
		sinks = append(sinks, sl)
	}
	// The journal is replayed at start in every mode, so a switch away
	// from journal after a crash loses nothing.
	journal := &audit.Journal{Path: filepath.Join(r.cfg.DataDir, "audit.journal"), RecoverOnly: sync != "journal",
		SyncEvery: cmp.Or(ac.SyncInterval, audit.DefaultJournalSyncEvery), IngestDelay: ac.IngestDelay}
	syncEvery := journal.SyncEvery
	if !journal.RecoverOnly {
		// The journal keeps every entry until the database's copy is
		// fsynced (it asks for that before it empties itself), so the
		// database's own background fsync can be rare.
		syncEvery = time.Second
	}
	store := auditStoreOf(r.db, sync, syncEvery, log)
	if err := store.Open(); err != nil {
		for _, s := range sinks {
			s.Close()
		}
		return err
	}
	b := audit.NewBroker(store, signer, sinks...)
	b.Logger = r.logger
	b.CheckpointEvery = ac.CheckpointEvery
	b.Journal = journal
	if err := b.Open(ctx); err != nil {
		for _, s := range sinks {
			s.Close()
		}
		store.Close()
		return err
	}
	if _, ok := r.db.(sqliteStorage); ok && journal.RecoverOnly {
		// Without a journal to write, the broker let go of the journal's
		// lock after the replay; this server keeps it, so that a second
		// server on the data directory is refused at start whatever its
		// --audit-sync, as with the journal: SQLite is one server per data
		// directory (its elector makes every server the leader).
		release, err := holdJournal(journal.Path, r.cfg.DataDir)
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b.Close(cctx)
			store.Close()
			return err
		}
		r.onClose(release) // after the broker's closer, which is registered next
	}
	r.onClose(func() {
		// After the broker's final checkpoint: the last fsync.
		defer func() {
			if err := store.Close(); err != nil {
				log.Error("close", "err", err)
			}
		}()
		// The final checkpoint, then the sinks drain (the webhook buffer
		// flushes while there is time; what is left goes after the next
		// start).
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(cctx); err != nil {
			log.Error("close", "err", err)
		}
	})

	metrics := httpapi.NewMetrics()
	r.metrics, r.api.Metrics = metrics, metrics
	writeLatency := metrics.Histogram("tokenward_audit_write_duration_seconds",
		"Time to record one audit entry before the answer: append it to the journal (--audit-sync journal) or commit it to the database.",
		[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1})
	writeFailures := metrics.Counter("tokenward_audit_write_failures_total", "Audit entries not recorded (each refused its request).")
	metrics.GaugeFunc("tokenward_active_tokens", "Tokens neither revoked nor expired.", activeTokens(r))
	metrics.OnScrape(brokerMetrics(b))
	pruned := metrics.Counter("tokenward_audit_pruned_entries_total", "Audit entries deleted by --audit-retention.")
	if ac.retention > 0 {
		r.lead.add("audit retention", func(ctx context.Context) { pruneAudit(ctx, b, ac.retention, pruned.Add, log) })
	}

	r.api.AuditLog = &httpapi.AuditLog{Store: r.db, PublicKey: signer.PublicKey(), Flush: b.Flush}
	r.api.Audit = func(ctx context.Context, e *tokenward.AuditEntry) error {
		start := time.Now()
		err := b.Record(ctx, e)
		writeLatency.Update(time.Since(start).Seconds())
		if err != nil {
			writeFailures.Inc()
		}
		return err
	}
	log.Info("audit trail", "key_id", audit.KeyID(signer.PublicKey()), "sinks", len(sinks)+1, "sync", sync)
	if ac.MetricsAddr != "" {
		return serveMetrics(r, ac.MetricsAddr, r.api.Metrics.Handler(), ac.PProf)
	}
	return nil
}

// auditSyncFor returns the --audit-sync mode for the storage: journal by
// default on SQLite; on PostgreSQL normal, the only mode there is (a
// committed transaction is durable, so full is normal), and journal is
// refused: servers sharing a database chain their entries in it (one chain
// for all, audit.ChainStore), and a journal on one machine's disk would keep
// answered entries out of that chain, lost with the machine.
func auditSyncFor(postgres bool, sync string) (string, error) {
	if !postgres {
		return cmp.Or(sync, "journal"), nil
	}
	if sync == "journal" {
		return "", usageError("--audit-sync journal is for SQLite: on PostgreSQL every audit entry is committed to the database before the answer, so that servers sharing it keep one audit chain and a lost machine loses no entry; leave --audit-sync out (or say normal)")
	}
	return cmp.Or(sync, "normal"), nil
}

// sameAuditKey refuses a server on PostgreSQL whose audit.key is not the
// key that signed the install's checkpoints: several servers sign the one
// chain, and checkpoints by another key fail `audit verify` (a data
// directory copied without audit.key makes a new one at start).
func sameAuditKey(ctx context.Context, r *serverRun, signer *audit.Signer) error {
	if !r.cfg.Storage.isPostgres() {
		return nil
	}
	cs, ok := r.db.(audit.CheckpointTail)
	if !ok {
		return nil
	}
	last, err := cs.LastAuditCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("audit checkpoints: %w", err)
	}
	if last == nil {
		return nil
	}
	mine, theirs := audit.KeyID(signer.PublicKey()), last.KeyID
	if mine != theirs {
		return fmt.Errorf("%s is audit key %s, but this install's checkpoints are signed by key %s: every server of one database needs the same audit.key (copy it from the data directory `tokenward init` made)",
			filepath.Join(r.cfg.DataDir, auditKeyFileName), mine, theirs)
	}
	return nil
}

// serveMetrics serves /metrics on its own listener: the API port needs a
// token for everything, Prometheus scrapers have none, and metrics show
// traffic shapes worth keeping off the network the API faces. Bind it to
// loopback or a monitoring network.
//
// With pprof, Go's profiler is served there too: CPU and heap profiles of a
// live server show its hot paths and traffic, so they never go on the API
// address. Not /debug/pprof/cmdline: flags such as --audit-webhook may hold
// a credential.
func serveMetrics(r *serverRun, addr string, h http.Handler, pprof bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) {
		r.logger.Warn("metrics served on a non-loopback address without authentication", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	srv := httpapi.NewHTTPServer(addr, mux, r.logger)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.logger.Error("metrics listener", "err", err)
		}
	}()
	r.logger.Info("metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	r.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return nil
}

// brokerMetrics writes the broker's counters at scrape time.
func brokerMetrics(b *audit.Broker) func(io.Writer) {
	return func(w io.Writer) {
		s := b.Stats()
		httpapi.WriteValue(w, "tokenward_audit_checkpoint_failures_total", httpapi.CounterType, "Signed checkpoints that could not be stored.", float64(s.CheckpointFailures))
		httpapi.WriteValue(w, "tokenward_audit_entries_total", httpapi.CounterType, "Audit entries stored in the database.", float64(s.Recorded))
		httpapi.WriteValue(w, "tokenward_audit_ingest_failures_total", httpapi.CounterType, "Batches of journal entries the database refused (requests are refused until it accepts them).", float64(s.IngestFailures))
		httpapi.WriteValue(w, "tokenward_audit_journal_pending", httpapi.GaugeType, "Audit entries in the journal not yet stored in the database.", float64(s.JournalPending))
		if len(s.Sinks) == 0 {
			return
		}
		written, failed, dropped, queued := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
		for _, k := range s.Sinks {
			written[k.Name], failed[k.Name], dropped[k.Name], queued[k.Name] = float64(k.Written), float64(k.Failed), float64(k.Dropped), float64(k.Queued)
		}
		httpapi.WriteFamily(w, "tokenward_audit_sink_dropped_total", httpapi.CounterType, "Audit entries a secondary sink lost (queue full, retries exhausted, buffer full).", "sink", dropped)
		httpapi.WriteFamily(w, "tokenward_audit_sink_failed_attempts_total", httpapi.CounterType, "Failed write attempts to a secondary sink.", "sink", failed)
		httpapi.WriteFamily(w, "tokenward_audit_sink_queued", httpapi.GaugeType, "Audit entries waiting for a secondary sink.", "sink", queued)
		httpapi.WriteFamily(w, "tokenward_audit_sink_written_total", httpapi.CounterType, "Audit entries written to a secondary sink (webhook: buffered on disk).", "sink", written)
	}
}

// activeTokens counts unrevoked, unexpired tokens at scrape time.
func activeTokens(r *serverRun) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := r.db.ActiveTokens(ctx, time.Now())
		if err != nil {
			return -1
		}
		return float64(n)
	}
}

// pruneAudit applies the audit retention now and every auditPruneEvery
// until ctx ends (the leader's job): entries older than retention go, up
// to the newest signed checkpoint among them (audit.Broker.Prune).
func pruneAudit(ctx context.Context, b *audit.Broker, retention time.Duration, count func(int), log *slog.Logger) {
	t := time.NewTicker(auditPruneEvery)
	defer t.Stop()
	for {
		before := time.Now().Add(-retention)
		res, err := b.Prune(ctx, before)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("audit retention: prune failed; the next run finishes it", "through_seq", res.Through, "deleted", res.Deleted, "err", err)
		case res.Deleted > 0:
			log.Info("audit retention: deleted the oldest entries", "through_seq", res.Through, "deleted", res.Deleted, "before", before.UTC().Format(time.RFC3339))
		}
		count(int(res.Deleted))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
