package reliability_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/proxy"
)

// node is one Amber proxy wired as `amber proxy` wires it (cmd/amber
// proxy.go): a journal in DIR/journal, a tee, an uploader into a store,
// and the proxy in front of a cluster.
type node struct {
	t        testing.TB
	opts     nodeOptions
	writerID string
	j        *archive.Journal
	tee      *archive.Tee
	up       *archive.Uploader
	p        *proxy.Proxy
	stopped  bool
}

type nodeOptions struct {
	Upstreams []string
	Store     archive.Store
	Key       *archive.Key
	// Dir is the data directory (journal, writer id, broker ports).
	// Default: a fresh temporary directory.
	Dir string
	// JournalFS injects faults under the journal. Default: the OS.
	JournalFS       vfs.FS
	Durability      archive.Durability
	SyncTimeout     time.Duration // default 2 s
	FlushInterval   time.Duration // default 200 ms
	FlushBytes      int           // default 256 KiB
	AttemptTimeout  time.Duration // default 2 s
	MaxBackoff      time.Duration // default 1 s
	MaxBacklogBytes int64
	Listen          string
	ClientTLS       *tls.Config
	UpstreamTLS     *tls.Config
	Dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger          *zap.Logger
}

// startNode starts a node; it is stopped (drained, uploaded) when the
// test ends unless stop was called.
func startNode(t testing.TB, o nodeOptions) *node {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 2 * time.Second
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.FlushBytes == 0 {
		o.FlushBytes = 256 << 10
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 2 * time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Second
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	n := &node{t: t, opts: o}
	var err error
	if n.writerID, err = archive.LoadWriterID(o.Dir); err != nil {
		t.Fatal(err)
	}
	n.j, err = archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(o.Dir, "journal"), FS: o.JournalFS,
		MaxBacklogBytes: o.MaxBacklogBytes, StallAfter: o.SyncTimeout, Logger: o.Logger})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	n.up, err = archive.NewUploader(archive.UploaderOptions{Journal: n.j, Store: o.Store, WriterID: n.writerID, Key: o.Key,
		FlushInterval: o.FlushInterval, FlushBytes: o.FlushBytes, AttemptTimeout: o.AttemptTimeout, MaxBackoff: o.MaxBackoff, Logger: o.Logger})
	if err != nil {
		t.Fatal(err)
	}
	n.up.Start()
	n.tee = archive.NewTee(n.j, archive.TeeOptions{Durability: o.Durability, SyncTimeout: o.SyncTimeout, Logger: o.Logger})
	n.p, err = proxy.New(proxy.Options{Upstreams: o.Upstreams, Listen: o.Listen, StateDir: filepath.Join(o.Dir, "proxy"),
		ClientTLS: o.ClientTLS, UpstreamTLS: o.UpstreamTLS, Dial: o.Dial, Logger: o.Logger, Tee: n.tee})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !n.stopped {
			n.stop()
		}
	})
	return n
}

// Addr is the bootstrap address clients use.
func (n *node) Addr() string { return n.p.Addr() }

// stop does what SIGTERM does to `amber proxy`: drain, commit, final
// upload, close. A failed journal cannot be closed (its Pebble is parked
// for good); stop then reports it and leaves it to the test.
func (n *node) stop() error {
	n.t.Helper()
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.p.Shutdown(ctx); err != nil {
		n.t.Errorf("proxy shutdown: %v", err)
	}
	n.j.Commit()
	uerr := n.up.Stop(ctx)
	if err := n.j.Close(); err != nil {
		return err
	}
	return uerr
}

// tpo is one record's place: topic, partition, offset.
type tpo struct {
	topic     string
	partition int32
	offset    int64
}

// ackLog records the offsets whose acknowledgement reached a client.
type ackLog struct {
	mu    sync.Mutex
	m     map[tpo]string // value of the record
	order []ackTiming    // in the order acknowledgements arrived
}

type ackTiming struct {
	partition int32
	latency   time.Duration // from Produce to the acknowledgement
}

func newAckLog() *ackLog { return &ackLog{m: map[tpo]string{}} }

func (a *ackLog) add(r *kgo.Record) {
	lat := time.Since(r.Timestamp)
	a.mu.Lock()
	a.m[tpo{r.Topic, r.Partition, r.Offset}] = string(r.Value)
	a.order = append(a.order, ackTiming{r.Partition, lat})
	a.mu.Unlock()
}

func (a *ackLog) len() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.m) }

// snapshot copies the log: the acks so far.
func (a *ackLog) snapshot() *ackLog {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := newAckLog()
	for k, v := range a.m {
		c.m[k] = v
	}
	return c
}

// stream produces continuously through a client, a few records in flight
// at a time, recording what is acknowledged.
type stream struct {
	cl      *kgo.Client
	acks    *ackLog
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	errs    []error
	sent    atomic.Int64
	started time.Time
}

// startStream produces values "<tag>-<n>" to topic through bootstrap with
// an idempotent franz-go producer (acks=all, unlimited retries) and
// inflight records outstanding.
func startStream(t testing.TB, bootstrap []string, topic, tag string, inflight int, opts ...kgo.Opt) *stream {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{cl: cl, acks: newAckLog(), stop: make(chan struct{}), done: make(chan struct{}), started: time.Now()}
	t.Cleanup(func() { s.finish(); cl.Close() })
	go func() {
		defer close(s.done)
		sem := make(chan struct{}, inflight)
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case sem <- struct{}{}:
			}
			wg.Add(1)
			s.sent.Add(1)
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, "%s-%d", tag, i), Timestamp: time.Now(),
				Headers: []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}}
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer wg.Done()
				<-sem
				if err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, err)
					s.mu.Unlock()
					return
				}
				s.acks.add(r)
			})
		}
	}()
	return s
}

// waitAcks waits until n records are acknowledged in all.
func (s *stream) waitAcks(t testing.TB, n int, within time.Duration) {
	t.Helper()
	waitFor(t, within, fmt.Sprintf("%d acknowledged records", n), func() bool { return s.acks.len() >= n })
}

// progress waits until n more records are acknowledged than now.
func (s *stream) progress(t testing.TB, n int, within time.Duration) {
	t.Helper()
	s.waitAcks(t, s.acks.len()+n, within)
}

// latencies returns, per partition, the produce latencies of the records
// acknowledged after the first from.
func (s *stream) latencies(from int) map[int32][]time.Duration {
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	out := map[int32][]time.Duration{}
	for _, a := range s.acks.order[min(from, len(s.acks.order)):] {
		out[a.partition] = append(out[a.partition], a.latency)
	}
	return out
}

// finish stops producing and waits (up to a minute) for every record in
// flight; it returns the produce errors.
func (s *stream) finish() []error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		return []error{fmt.Errorf("records still unacknowledged a minute after the stream stopped")}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}

// waitFor polls cond until it holds or within passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// check says what checkArchive compares.
type check struct {
	Store archive.Store
	Key   *archive.Key
	// Cluster is how to reach the cluster itself (not the proxy).
	Cluster []string
	// ClientOpts add TLS or SASL to the cluster client.
	ClientOpts []kgo.Opt
	Topics     []string
	// MustHold are acknowledged records the archive must hold before any
	// backfill: in sync mode, every acknowledged record.
	MustHold *ackLog
	// Backfill fills the archive's holes from the cluster before the
	// comparison: for faults that legitimately leave holes (async mode,
	// a failed journal, responses lost on the way back).
	Backfill bool
}

// verdict is what checkArchive found.
type verdict struct {
	Held int // MustHold records the archive holds
	// MissingBefore is what verify --against found missing before the
	// backfill (with Backfill only).
	MissingBefore int64
	Backfilled    int64 // offsets the backfill fetched
	Integrity     *archive.IntegrityReport
	Cmp           *archive.Comparison
	Warnings      int
	BatchesTotal  int64
}

func (v verdict) String() string {
	return fmt.Sprintf("verify: %d objects read, %d batches, %d records, %d warnings, ok=%v; acknowledged held %d; missing before backfill %d, backfilled %d offsets; against the cluster: %d matched, %d missing, %d differing, ok=%v",
		v.Integrity.Indexes+v.Integrity.Segments, v.Integrity.Batches, v.Integrity.Records, v.Warnings, v.Integrity.OK(), v.Held,
		v.MissingBefore, v.Backfilled, v.Cmp.Matched, v.Cmp.Missing, v.Cmp.Differing, v.Cmp.OK())
}

// checkArchive is `amber verify` then `amber verify --against` in
// process: every object's checksums, every acknowledged record archived at
// its offset, then (after a backfill if asked) archive == cluster record
// by record. It fails the test on any problem.
func checkArchive(t testing.TB, c check) verdict {
	t.Helper()
	ctx := testCtx(t, 3*time.Minute)
	var v verdict
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Cluster...)}, c.ClientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	a, err := archive.OpenArchive(ctx, c.Store, c.Key)
	if err != nil {
		t.Fatalf("open archive: %v", err)
	}
	cov := map[[2]any]archive.PartitionCoverage{}
	for _, p := range a.Coverage() {
		cov[[2]any{p.Topic, p.Partition}] = p
	}
	if c.MustHold != nil {
		var missing []string
		c.MustHold.mu.Lock()
		for k := range c.MustHold.m {
			if holds(cov[[2]any{k.topic, k.partition}], k.offset) {
				v.Held++
			} else {
				missing = append(missing, fmt.Sprintf("%s/%d@%d", k.topic, k.partition, k.offset))
			}
		}
		c.MustHold.mu.Unlock()
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%d acknowledged records are not archived, first %s", len(missing), strings.Join(missing[:min(10, len(missing))], " "))
		}
	}
	if c.Backfill {
		before, err := a.CompareWithCluster(ctx, archive.CompareOptions{Client: cl, Topics: c.Topics})
		if err != nil {
			t.Fatalf("verify --against before the backfill: %v", err)
		}
		v.MissingBefore = before.Missing
		w, err := archive.NewWriter(ctx, archive.WriterOptions{Store: c.Store, Key: c.Key, WriterID: archive.NewWriterID()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Sink: w, Store: c.Store, Key: c.Key, Topics: c.Topics, NoSnapshots: true})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := b.Step(ctx)
		if err != nil {
			t.Fatalf("backfill: %v", err)
		}
		if len(rep.Errors) > 0 {
			t.Errorf("backfill errors: %v", rep.Errors)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		v.Backfilled = rep.Offsets
		if a, err = archive.OpenArchive(ctx, c.Store, c.Key); err != nil {
			t.Fatalf("open archive after backfill: %v", err)
		}
	}
	v.Integrity, err = archive.VerifyIntegrity(ctx, c.Store, archive.VerifyOptions{Key: c.Key})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Integrity.Problems {
		if p.Warning {
			v.Warnings++
		} else {
			t.Errorf("verify: %s", p)
		}
	}
	v.Cmp, err = a.CompareWithCluster(ctx, archive.CompareOptions{Client: cl, Topics: c.Topics})
	if err != nil {
		t.Fatalf("verify --against: %v", err)
	}
	if !v.Cmp.OK() {
		for _, p := range v.Cmp.Partitions {
			if p.Missing > 0 || p.Differing > 0 || p.Error != "" {
				t.Errorf("verify --against: %s/%d: %d missing %v, %d differing %v %s", p.Topic, p.Partition, p.Missing, p.MissingRanges, p.Differing, p.Differences, p.Error)
			}
		}
	}
	if v.Cmp.Matched == 0 {
		t.Errorf("verify --against compared nothing")
	}
	t.Logf("RESULT %s", v)
	return v
}

// holds reports whether a partition's coverage holds offset o.
func holds(c archive.PartitionCoverage, o int64) bool {
	if o < c.StartOffset || o >= c.EndOffset {
		return false
	}
	for _, h := range c.Holes {
		if h[0] <= o && o < h[1] {
			return false
		}
	}
	return true
}
