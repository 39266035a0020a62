package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/proxy"
)

const (
	defaultAdminListen  = "127.0.0.1:9080"
	defaultDataDir      = "amber-data"
	defaultDrainTimeout = 30 * time.Second
)

const proxyExamples = `  # From a config file, a setting overridden by the environment, one by a flag.
  AMBER_LISTEN=0.0.0.0:9092 amber proxy --config /etc/amber/amber.yaml --log-level debug
  amber proxy --config amber.yaml --print-config

  # In front of a three-broker cluster; clients bootstrap from this host:9092.
  amber proxy --upstream kafka-0:9092,kafka-1:9092,kafka-2:9092 --listen 0.0.0.0:9092 --advertise-host amber.internal

  # As a sidecar: the application talks to localhost.
  amber proxy --upstream kafka.prod:9093 --upstream-tls --listen 127.0.0.1:9092

  # TLS with client certificates towards clients, mTLS towards brokers.
  amber proxy --upstream kafka:9093 --tls-cert proxy.pem --tls-key proxy-key.pem --tls-client-ca clients-ca.pem \
    --upstream-ca brokers-ca.pem --upstream-cert amber.pem --upstream-key amber-key.pem`

// proxyConfig is everything `amber proxy` is configured with.
type proxyConfig struct {
	upstreams      listFlag
	listen         string
	advertiseHost  string
	brokerPortBase int
	dataDir        string
	adminListen    string
	maxFrameBytes  int
	drainTimeout   time.Duration
	durability     string
	syncTimeout    time.Duration
	maxPending     int64
	archiveURL     string
	flushInterval  time.Duration
	flushBytes     int
	maxBacklog     int64
	commitDelay    time.Duration
	keyFile        string
	uploadTimeout  time.Duration
	fetchNodeEnds  bool
	backfillEvery  time.Duration
	backfillTopics listFlag
	logLevel       string
	logFormat      string
	clientTLS      tlsFlags
	upstreamTLS    tlsFlags
	backfillSASL   saslFlags
}

func runProxy(args []string, stdout, stderr io.Writer) error {
	var cfg proxyConfig
	fs := newFlagSet("proxy", "--upstream HOST:PORT[,...] [--listen HOST:PORT] [flags]", proxyExamples, stdout)
	fs.Var(&cfg.upstreams, "upstream", "the cluster's bootstrap brokers, HOST:PORT, comma-separated or repeated (required)")
	fs.StringVar(&cfg.listen, "listen", proxy.DefaultListen, "bootstrap address clients use instead of the cluster's")
	fs.StringVar(&cfg.advertiseHost, "advertise-host", "", "host written into broker addresses given to clients (default: --listen's host, or this machine's hostname for a wildcard)")
	fs.IntVar(&cfg.brokerPortBase, "broker-port-base", 0, "first port for per-broker listeners (default: --listen's port + 1)")
	fs.StringVar(&cfg.dataDir, "data", defaultDataDir, "directory for the proxy's local state: the journal, its writer id, broker port assignments")
	fs.StringVar(&cfg.durability, "durability", "sync", "sync: a produce response reaches the client only once its batches are fsynced in the journal; async: at once, the journal follows")
	fs.DurationVar(&cfg.syncTimeout, "sync-timeout", archive.DefaultSyncTimeout, "in sync mode, the longest a produce response waits for the journal before it goes anyway (the batch then may show as a hole)")
	fs.DurationVar(&cfg.commitDelay, "journal-commit-delay", 0, "in sync mode, how long the journal waits for more produce responses before each group commit: fewer, larger fsyncs (less CPU) for that much more latency; e.g. 200us")
	fs.Int64Var(&cfg.maxPending, "journal-max-pending-bytes", archive.DefaultMaxPendingBytes, "bytes that may wait for the journal before new batches are refused (and become holes)")
	fs.StringVar(&cfg.archiveURL, "archive", "", "where the journal is uploaded: s3://bucket/prefix, file:///dir or a path (default DATA/archive)")
	fs.DurationVar(&cfg.flushInterval, "flush-interval", archive.DefaultFlushInterval, "upload at least this often")
	fs.IntVar(&cfg.flushBytes, "flush-bytes", archive.DefaultFlushBytes, "the segment size, as stored: an upload starts once about this much waits, counted compressed (up to 4x as much raw for compressible data)")
	fs.Int64Var(&cfg.maxBacklog, "max-backlog-bytes", 10<<30, "bytes that may wait for upload (object store down) before new batches are refused, become holes, and /readyz fails; 0 for no cap")
	fs.BoolVar(&cfg.fetchNodeEnds, "fetch-node-endpoints", false, "let clients use Fetch v16+ (KIP-951 NodeEndpoints), decoding every Fetch response to rewrite them; off: Fetch is capped at v15 and large responses are spliced, about half the proxy's CPU per GB fetched")
	fs.DurationVar(&cfg.uploadTimeout, "upload-timeout", archive.DefaultAttemptTimeout, "longest one upload attempt may take before it is retried")
	fs.DurationVar(&cfg.backfillEvery, "backfill-interval", time.Minute, "how often a background backfill fetches the archive's holes (records produced around the proxy, transaction markers) from the cluster and snapshots configs and group offsets; 0 turns it off")
	fs.Var(&cfg.backfillTopics, "backfill-topic", "topics the background backfill covers, comma-separated or repeated (default: every topic but internal ones)")
	cfg.backfillSASL.register(fs, "backfill-")
	for _, n := range []string{"sasl-mechanism", "sasl-user", "sasl-password"} {
		f := fs.Lookup("backfill-" + n)
		f.Usage = "the background backfill's own client of the cluster: " + f.Usage + " (clients' SASL passes through the proxy untouched)"
	}
	fs.StringVar(&cfg.keyFile, "encryption-key-file", "", "AES-256 key (32 bytes or 64 hex chars) to encrypt archive objects with")
	fs.StringVar(&cfg.adminListen, "admin-listen", defaultAdminListen, "address for /metrics, /healthz and /readyz; empty turns it off")
	fs.IntVar(&cfg.maxFrameBytes, "max-frame-bytes", proxy.DefaultMaxFrameBytes, "largest request or response frame accepted")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", defaultDrainTimeout, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "json or console")
	cfg.clientTLS.clientSideFlags(fs)
	cfg.upstreamTLS.upstreamFlags(fs)
	configFile := fs.String("config", "", "YAML file of settings (keys are these flag names); AMBER_* environment variables override it, flags override both")
	printCfg := fs.Bool("print-config", false, "print the effective configuration (secrets masked) and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := applyConfig(fs, *configFile); err != nil {
		return err
	}
	if *printCfg {
		printConfig(stdout, fs)
		return nil
	}
	log, err := newLogger(cfg.logLevel, cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()

	var errs []error
	clientTLS, err := cfg.clientTLS.serverConfig()
	errs = append(errs, err)
	upstreamTLS, err := cfg.upstreamTLS.clientConfig()
	errs = append(errs, err)
	if cfg.backfillEvery < 0 {
		errs = append(errs, usagef("--backfill-interval %s: want 0 (off) or more", cfg.backfillEvery))
	}
	if cfg.maxFrameBytes <= 0 || cfg.maxFrameBytes > 1<<30 {
		errs = append(errs, usagef("--max-frame-bytes %d: want 1..%d", cfg.maxFrameBytes, 1<<30))
	}
	durability, err := archive.ParseDurability(cfg.durability)
	if err != nil {
		errs = append(errs, usageError{err})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := proxy.Options{
		Upstreams:      cfg.upstreams,
		Listen:         cfg.listen,
		AdvertiseHost:  cfg.advertiseHost,
		BrokerPortBase: cfg.brokerPortBase,
		StateDir:       filepath.Join(cfg.dataDir, "proxy"),
		MaxFrameBytes:  int32(cfg.maxFrameBytes),
		ClientTLS:      clientTLS,
		UpstreamTLS:    upstreamTLS,
		Logger:         log,
		Metrics:        newProxyMetrics(reg),

		FetchNodeEndpoints: cfg.fetchNodeEnds,
	}
	// Validate before anything is created on disk.
	if err := opts.EnsureDefaults().Validate(); err != nil {
		return usageError{err}
	}

	writerID, err := archive.LoadWriterID(cfg.dataDir)
	if err != nil {
		return err
	}
	key, err := loadKey(cfg.keyFile)
	if err != nil {
		return err
	}
	if cfg.archiveURL == "" {
		cfg.archiveURL = filepath.Join(cfg.dataDir, "archive")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	store, err := openStore(sctx, cfg.archiveURL)
	scancel()
	if err != nil {
		return fmt.Errorf("archive %s: %w", cfg.archiveURL, err)
	}
	journal, err := archive.OpenJournal(archive.JournalOptions{
		Dir: filepath.Join(cfg.dataDir, "journal"), MaxPendingBytes: cfg.maxPending, MaxBacklogBytes: cfg.maxBacklog,
		StallAfter: cfg.syncTimeout, SyncCommitDelay: cfg.commitDelay, Logger: log,
	})
	if err != nil {
		return err
	}
	defer journal.Close()
	uploader, err := archive.NewUploader(archive.UploaderOptions{
		Journal: journal, Store: store, WriterID: writerID, FlushInterval: cfg.flushInterval, FlushBytes: cfg.flushBytes, Key: key, Logger: log,
		AttemptTimeout: cfg.uploadTimeout,
	})
	if err != nil {
		return usageError{err}
	}
	uploader.Start()
	defer uploader.Stop(context.Background())
	tee := archive.NewTee(journal, archive.TeeOptions{Durability: durability, SyncTimeout: cfg.syncTimeout, Logger: log})
	log.Info("journal open", zap.String("dir", journal.Dir()), zap.String("writer_id", writerID), zap.Stringer("durability", durability),
		zap.String("archive", store.String()), zap.Bool("encrypted", key != nil))

	opts.Tee = tee
	registerArchiveMetrics(reg, journal, tee, uploader)
	backfiller, err := startBackfill(cfg, upstreamTLS, store, key, journal, reg, log)
	if err != nil {
		return err
	}
	defer backfiller.Stop()
	p, err := proxy.New(opts)
	if err != nil {
		return usageError{err}
	}
	if err := p.Start(); err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	var admin *adminServer
	if cfg.adminListen != "" {
		admin, err = startAdmin(cfg.adminListen, reg, []readyCheck{
			{"journal", func(context.Context) error { return journal.Health() }},
			{"upstream cluster", p.Ready},
		}, log)
		if err != nil {
			p.Close()
			return err
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	sig := <-sigs
	log.Info("draining: no new connections, finishing requests in flight", zap.String("signal", sig.String()), zap.Duration("timeout", cfg.drainTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: closing at once")
			cancel()
		case <-ctx.Done():
		}
	}()
	err = p.Shutdown(ctx)
	backfiller.Stop()
	if admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		admin.Close(actx)
		acancel()
	}
	if err != nil {
		log.Warn("drain cut short; connections closed with requests in flight", zap.Error(err))
		return fmt.Errorf("drain: %w", err)
	}
	// Everything acknowledged is in the journal; upload it before exit.
	journal.Commit()
	fctx, fcancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	ferr := uploader.Stop(fctx)
	fcancel()
	if ferr != nil {
		log.Warn("final upload incomplete; the journal keeps the rest for the next start", zap.Error(ferr), zap.Int64("backlog_bytes", journal.BacklogBytes()))
	}
	if err := journal.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	log.Info("stopped")
	return nil
}

// startBackfill starts the background backfill (nil with
// --backfill-interval 0): a pass every interval, into the proxy's own
// journal, which its uploader ships. Offsets acknowledged in the last
// min(interval, 2 × --sync-timeout) are left to the next pass: the
// proxy's own produce responses may still be on their way into the
// journal. A nil *proxyBackfill's Stop does nothing.
func startBackfill(cfg proxyConfig, upstreamTLS *tls.Config, store archive.Store, key *archive.Key, j *archive.Journal, reg prometheus.Registerer, log *zap.Logger) (*proxyBackfill, error) {
	if cfg.backfillEvery == 0 {
		return nil, nil
	}
	opts, err := clientOpts(cfg.upstreams, archive.DefaultBackfillClientID, upstreamTLS, &cfg.backfillSASL)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Sink: &archive.JournalSink{Journal: j}, Store: store, Key: key,
		Journal: j, Topics: cfg.backfillTopics, Settle: min(cfg.backfillEvery, 2*cfg.syncTimeout), Logger: log})
	if err != nil {
		cl.Close()
		return nil, usageError{err}
	}
	registerBackfillMetrics(reg, b)
	b.Start(cfg.backfillEvery)
	log.Info("background backfill on", zap.Duration("interval", cfg.backfillEvery), zap.Strings("topics", cfg.backfillTopics))
	return &proxyBackfill{b: b, cl: cl}, nil
}

type proxyBackfill struct {
	b    *archive.Backfiller
	cl   *kgo.Client
	once sync.Once
}

// Stop ends the background backfill; safe to call twice, and on nil.
func (p *proxyBackfill) Stop() {
	if p != nil {
		p.once.Do(func() { p.b.Stop(); p.cl.Close() })
	}
}
