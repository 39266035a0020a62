package archivebench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/bench/runner"
	"github.com/amber-kafka/amber/proxy"
)

// benchTopic is the topic every scenario produces to.
const benchTopic = "bench"

// Tee variants of the produce and paced scenarios.
const (
	// VariantOff is the proxy without a tee.
	VariantOff = "off"
	// VariantAsync is the proxy with the tee in async durability: the
	// response goes to the client at once, the journal follows.
	VariantAsync = "tee-async"
	// VariantSync is the proxy with the tee in sync durability (the
	// default): each produce response waits for the journal's fsync.
	VariantSync = "tee-sync"
)

// TeeVariants lists the tee variants in the order of the first round.
var TeeVariants = []string{VariantOff, VariantAsync, VariantSync}

// Cluster is a kfake cluster whose brokers acknowledge produced records
// with real, advancing offsets and discard them (kfake.BlackholeProduce),
// so the broker neither stores nor grows and the tee journals every batch
// at the offset a real broker would have given it.
type Cluster struct {
	*kfake.Cluster
	o        Options
	scenario string
}

// NewCluster starts o.Brokers brokers with benchTopic seeded at
// o.Partitions partitions, on 127.0.0.1.
func NewCluster(scenario string, o Options) (*Cluster, error) {
	o.EnsureDefaults()
	c := &Cluster{o: o, scenario: scenario}
	var err error
	pprof.Do(context.Background(), labels(scenario, "kfake"), func(context.Context) {
		c.Cluster, err = kfake.NewCluster(kfake.NumBrokers(o.Brokers), kfake.SeedTopics(int32(o.Partitions), benchTopic),
			kfake.BlackholeProduce())
	})
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return c, nil
}

// TeeProxy is an Amber proxy in front of a Cluster, with, unless its
// variant is VariantOff, a tee writing into a journal of its own in a new
// directory. One is built for each run, so every run starts with a journal
// in the steady state of a proxy whose uploader keeps up: no batches, and
// spare log files to reuse (seasonJournal).
type TeeProxy struct {
	Proxy   *proxy.Proxy
	Journal *archive.Journal // nil for VariantOff
	Tee     *archive.Tee     // nil for VariantOff
	variant string
	dir     string
}

// StartProxy starts a proxy of variant in front of c.
func (c *Cluster) StartProxy(variant string) (*TeeProxy, error) {
	tp := &TeeProxy{variant: variant}
	opts := proxy.Options{Upstreams: c.ListenAddrs(), Listen: "127.0.0.1:0", Logger: c.o.Logger}
	if variant != VariantOff {
		d := archive.Sync
		switch variant {
		case VariantAsync:
			d = archive.Async
		case VariantSync:
		default:
			return nil, fmt.Errorf("unknown tee variant %q", variant)
		}
		var err error
		if tp.dir, err = os.MkdirTemp(c.o.Dir, "archivebench-journal-"); err != nil {
			return nil, err
		}
		if err = seasonJournal(context.Background(), tp.dir); err != nil {
			os.RemoveAll(tp.dir)
			return nil, err
		}
		pprof.Do(context.Background(), labels(c.scenario, "journal/"+variant), func(context.Context) {
			tp.Journal, err = archive.OpenJournal(archive.JournalOptions{Dir: tp.dir, Logger: c.o.Logger, SpareLogFiles: seasonSpares})
		})
		if err != nil {
			os.RemoveAll(tp.dir)
			return nil, err
		}
		tp.Tee = archive.NewTee(tp.Journal, archive.TeeOptions{Durability: d, Logger: c.o.Logger})
		opts.Tee = tp.Tee
	}
	var err error
	pprof.Do(context.Background(), labels(c.scenario, "proxy/"+variant), func(context.Context) {
		tp.Proxy, err = proxy.New(opts)
		if err == nil {
			err = tp.Proxy.Start()
		}
	})
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	return tp, nil
}

// CloseProxy drains and stops the proxy, leaving the journal open.
func (tp *TeeProxy) CloseProxy() error {
	if tp.Proxy == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tp.Proxy.Shutdown(ctx)
	tp.Proxy = nil
	return err
}

// Close stops the proxy, closes the journal and removes its directory.
func (tp *TeeProxy) Close() error {
	err := tp.CloseProxy()
	if tp.Journal != nil {
		if jerr := tp.Journal.Close(); err == nil {
			err = jerr
		}
	}
	if tp.dir != "" {
		os.RemoveAll(tp.dir)
	}
	return err
}

// ProduceRun is one produce or paced run of one variant.
type ProduceRun struct {
	MBPerSec      float64 `json:"mb_per_sec"` // record values acknowledged per second
	RecordsPerSec float64 `json:"records_per_sec"`
	CPUPerGB      float64 `json:"cpu_sec_per_gb"` // process CPU (client, kfake, proxy, tee, journal) per GB of values
	// P50Micros and P99Micros are Produce-to-acknowledgement latencies
	// (paced runs only).
	P50Micros float64 `json:"p50_us,omitempty"`
	P99Micros float64 `json:"p99_us,omitempty"`
	// JournalMBPerSec is the batch bytes the journal committed per
	// second during the window, CommitsPerSec its group commits.
	JournalMBPerSec float64 `json:"journal_mb_per_sec,omitempty"`
	CommitsPerSec   float64 `json:"commits_per_sec,omitempty"`
	// Dropped counts batches the tee could not journal during the whole
	// run (journal backlog full or commit failed); SyncTimeouts the sync
	// waits that gave up.
	Dropped      int64 `json:"dropped"`
	SyncTimeouts int64 `json:"sync_timeouts"`
	// Stalls counts the journal's write stalls during the run (Pebble
	// stopped taking writes until a memtable flush caught up); a total
	// over rounds in a TeeVariantResult.
	Stalls int64 `json:"stalls"`
}

func (r ProduceRun) String() string {
	s := fmt.Sprintf("%8.1f MB/s %5.2f CPU s/GB", r.MBPerSec, r.CPUPerGB)
	if r.P99Micros > 0 {
		s += fmt.Sprintf("  p50 %6.0f µs p99 %6.0f µs", r.P50Micros, r.P99Micros)
	}
	if r.CommitsPerSec > 0 {
		s += fmt.Sprintf("  journal %7.1f MB/s %5.0f commits/s", r.JournalMBPerSec, r.CommitsPerSec)
	}
	if r.Dropped > 0 || r.SyncTimeouts > 0 {
		s += fmt.Sprintf("  DROPPED %d, sync timeouts %d", r.Dropped, r.SyncTimeouts)
	}
	if r.Stalls > 0 {
		s += fmt.Sprintf("  %d write stalls", r.Stalls)
	}
	return s
}

// journalMark is the journal's counters at one instant.
type journalMark struct {
	bytes, commits int64
	at             time.Time
}

func (tp *TeeProxy) mark() journalMark {
	m := journalMark{at: time.Now()}
	if tp.Journal != nil {
		s := tp.Journal.Stats()
		m.bytes, m.commits = s.BatchBytes, s.Commits
	}
	return m
}

// finish fills in the journal figures of r from two marks.
func (tp *TeeProxy) finish(r *ProduceRun, m0, m1 journalMark) {
	if tp.Journal == nil {
		return
	}
	d := m1.at.Sub(m0.at)
	r.JournalMBPerSec = mbps(m1.bytes-m0.bytes, d)
	r.CommitsPerSec = float64(m1.commits-m0.commits) / d.Seconds()
}

// withClient runs fn with a producer (o.Linger, no compression, acks=all,
// idempotent) that reaches the cluster through tp.
func (tp *TeeProxy) withClient(ctx context.Context, o *Options, scenario string, fn func(context.Context, *kgo.Client) error) error {
	var err error
	pprof.Do(ctx, labels(scenario, "client/"+tp.variant), func(ctx context.Context) {
		var cl *kgo.Client
		cl, err = kgo.NewClient(
			kgo.SeedBrokers(tp.Proxy.Addr()),
			kgo.DefaultProduceTopic(benchTopic),
			kgo.ProducerLinger(o.linger()),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
		)
		if err != nil {
			return
		}
		defer cl.Close()
		err = fn(ctx, cl)
	})
	return err
}

// ProduceThroughput is one maximum-throughput run through tp: a single
// goroutine produces o.RecordBytes random (incompressible) values as fast
// as the client takes them; the window counts acknowledgements.
func ProduceThroughput(ctx context.Context, o Options, tp *TeeProxy) (ProduceRun, error) {
	o.EnsureDefaults()
	var out ProduceRun
	err := tp.withClient(ctx, &o, ScenarioProduce, func(ctx context.Context, cl *kgo.Client) error {
		var (
			vals  = newValues(PayloadIncompressible, o.RecordBytes, 0)
			acked atomic.Int64
			fail  = runner.NewFirstErr()
			stop  atomic.Bool
			done  = make(chan struct{})
		)
		pool := sync.Pool{New: func() any { return new(kgo.Record) }}
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				fail.Set(fmt.Errorf("produce: %w", err))
			} else {
				acked.Add(1)
			}
			pool.Put(r)
		}
		produceCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer close(done)
			for !stop.Load() && fail.Err() == nil {
				r := pool.Get().(*kgo.Record)
				*r = kgo.Record{Value: vals.get()}
				cl.Produce(produceCtx, r, promise)
			}
		}()
		err := fail.Sleep(ctx, o.Warmup)
		if err == nil {
			n0, m0, c0 := acked.Load(), tp.mark(), runner.ProcessCPU()
			err = fail.Sleep(ctx, o.Duration)
			n1, m1, c1 := acked.Load(), tp.mark(), runner.ProcessCPU()
			d := m1.at.Sub(m0.at)
			b := (n1 - n0) * int64(o.RecordBytes)
			out = ProduceRun{MBPerSec: mbps(b, d), RecordsPerSec: float64(n1-n0) / d.Seconds(), CPUPerGB: perGB((c1 - c0).Seconds(), b)}
			tp.finish(&out, m0, m1)
		}
		stop.Store(true)
		select {
		case <-done:
		case <-time.After(flushTimeout):
			cancel()
			<-done
			if err == nil {
				err = fmt.Errorf("producer still blocked %s after the window: the cluster stopped acknowledging", flushTimeout)
			}
		}
		if ferr := runner.Flush(ctx, cl, flushTimeout); err == nil {
			err = ferr
		}
		if err == nil {
			err = fail.Err()
		}
		return err
	})
	if s := tp.teeStats(); s != nil {
		out.Dropped, out.SyncTimeouts = s.Dropped, s.SyncTimeouts
	}
	return out, err
}

// pacerTick is how often the paced producer wakes to catch up with its
// schedule (see bench: finer sleeps are not honoured on these VMs).
const pacerTick = time.Millisecond

// PacedProduce is one paced run through tp: records of o.RecordBytes
// random bytes are produced asynchronously at rate records/s, in a burst
// every pacerTick. A record's latency runs from its Produce call to its
// acknowledgement, and the latencies of the records produced during the
// window are summarised. MBPerSec counts the acknowledgements that arrived
// during the window, so a variant that cannot sustain rate shows it.
func PacedProduce(ctx context.Context, o Options, tp *TeeProxy, rate float64) (ProduceRun, error) {
	o.EnsureDefaults()
	if rate <= 0 {
		return ProduceRun{}, fmt.Errorf("paced rate %g: want above 0", rate)
	}
	var out ProduceRun
	err := tp.withClient(ctx, &o, ScenarioPaced, func(ctx context.Context, cl *kgo.Client) error {
		var (
			vals   = newValues(PayloadIncompressible, o.RecordBytes, 0)
			fail   = runner.NewFirstErr()
			start  = time.Now()
			open   = start.Add(o.Warmup)
			end    = open.Add(o.Duration)
			inWin  atomic.Int64 // acknowledgements that arrived in the window
			mu     sync.Mutex   // guards lat: promises may run concurrently
			lat    = make([]time.Duration, 0, int(rate*o.Duration.Seconds()*1.1))
			m0, m1 journalMark
			c0, c1 time.Duration
			opened bool
		)
		pool := sync.Pool{New: func() any { return new(kgo.Record) }}
		promise := func(r *kgo.Record, err error) {
			now := time.Now()
			if err != nil {
				fail.Set(fmt.Errorf("produce: %w", err))
			} else {
				if !now.Before(open) && now.Before(end) {
					inWin.Add(1)
				}
				if t := r.Timestamp; !t.Before(open) && t.Before(end) {
					mu.Lock()
					lat = append(lat, now.Sub(t))
					mu.Unlock()
				}
			}
			pool.Put(r)
		}
		for sent := int64(0); fail.Err() == nil; time.Sleep(pacerTick) {
			now := time.Now()
			if !opened && !now.Before(open) {
				opened, m0, c0 = true, tp.mark(), runner.ProcessCPU()
			}
			if !now.Before(end) {
				m1, c1 = tp.mark(), runner.ProcessCPU()
				break
			}
			due := int64(now.Sub(start).Seconds()*rate) + 1
			for ; sent < due; sent++ {
				r := pool.Get().(*kgo.Record)
				*r = kgo.Record{Value: vals.get(), Timestamp: time.Now()}
				cl.Produce(ctx, r, promise)
			}
		}
		if err := runner.Flush(ctx, cl, flushTimeout); err != nil {
			return err
		}
		if err := fail.Err(); err != nil {
			return err
		}
		if !opened {
			return fmt.Errorf("paced run ended before its window opened")
		}
		d := m1.at.Sub(m0.at)
		b := inWin.Load() * int64(o.RecordBytes)
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(lat)
		all := lat
		out = ProduceRun{
			MBPerSec: mbps(b, d), RecordsPerSec: float64(inWin.Load()) / d.Seconds(),
			CPUPerGB:  perGB((c1 - c0).Seconds(), b),
			P50Micros: runner.Micros(runner.Percentile(all, 0.50)), P99Micros: runner.Micros(runner.Percentile(all, 0.99)),
		}
		tp.finish(&out, m0, m1)
		return nil
	})
	if s := tp.teeStats(); s != nil {
		out.Dropped, out.SyncTimeouts = s.Dropped, s.SyncTimeouts
	}
	return out, err
}

func (tp *TeeProxy) teeStats() *archive.TeeStats {
	if tp.Tee == nil {
		return nil
	}
	s := tp.Tee.Stats()
	return &s
}

// flushTimeout bounds how long a run waits for its last acknowledgements.
const flushTimeout = 30 * time.Second

// labels are the pprof labels of a goroutine doing what (kfake, proxy/…,
// journal/…, client/…) in scenario: bench=SCENARIO/WHAT. Goroutines
// inherit them from the goroutine that starts them.
func labels(scenario, what string) pprof.LabelSet {
	return pprof.Labels("bench", scenario+"/"+what)
}
