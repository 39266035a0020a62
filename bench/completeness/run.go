package completeness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/bench/runner"
)

const topic = "bench"

// Measurements, in the order a round runs them (consume and backfill swap
// places every other round).
const (
	// MeasureConsume: a franz-go consumer (default options, no group)
	// reads every partition from the log start to the high watermark.
	MeasureConsume = "consume"
	// MeasureBackfill: archive.Backfiller fills an empty archive from the
	// same log (every offset is a hole), and the writer's last upload is
	// done: the archive holds it all.
	MeasureBackfill = "backfill"
	// MeasureBackfillFetch: the same backfill pass into a sink that
	// discards what it is given: the fetch side alone (raw read-
	// uncommitted fetches, CRC checks, hole bookkeeping), without the
	// cost of building, hashing and storing segments. Shown, not judged:
	// it says how much of the gap to the consumer is the archive's.
	MeasureBackfillFetch = "backfill-fetch"
	// MeasureVerify: archive.VerifyIntegrity reads every object of that
	// archive and checks every checksum and index field.
	MeasureVerify = "verify"
	// MeasureVerifyAgainst: Archive.CompareWithCluster, record by record.
	MeasureVerifyAgainst = "verify-against"
)

// Run is one measurement: how long it took to move how many bytes.
type Run struct {
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	MBps    float64 `json:"mb_per_sec"`
	CPUSec  float64 `json:"cpu_sec"` // the process's CPU time over the run
}

// ShapeResult is every measurement of one shape.
type ShapeResult struct {
	Shape   string `json:"shape"`
	Records int64  `json:"records"`
	// LogBytes is the log's size as batches: what consume and backfill
	// read, and every MB/s but verify's is of.
	LogBytes int64 `json:"log_bytes"`
	// ArchiveBytes is what backfill wrote: segments and indexes, what
	// verify reads.
	ArchiveBytes int64 `json:"archive_bytes"`
	Batches      int64 `json:"batches"`
	// Runs per measurement, in run order; Median is the median MB/s.
	Runs   map[string][]Run   `json:"runs"`
	Median map[string]float64 `json:"median_mb_per_sec"`
	// Ratio is the median backfill over the median consume throughput.
	Ratio float64 `json:"backfill_vs_consume"`
	Pass  bool    `json:"pass"`
}

// Report is the outcome of Measure.
type Report struct {
	Time     time.Time     `json:"time"`
	CPUs     int           `json:"cpus"`
	Go       string        `json:"go_version"`
	Options  ReportOptions `json:"options"`
	Shapes   []ShapeResult `json:"shapes"`
	Elapsed  string        `json:"elapsed"`
	Target   float64       `json:"target_ratio"`
	AllPass  bool          `json:"pass"`
	StoreDir string        `json:"store_dir,omitempty"`
}

// ReportOptions are the options a report was measured with.
type ReportOptions struct {
	Rounds      int    `json:"rounds"`
	Brokers     int    `json:"brokers"`
	Partitions  int    `json:"partitions"`
	RecordBytes int    `json:"record_bytes"`
	ShapeBytes  int64  `json:"shape_bytes"`
	Store       string `json:"store"` // file or memory
}

// Measure runs every shape: a fresh in-process kfake cluster, the log
// produced once, then o.Rounds rounds of each measurement.
func Measure(ctx context.Context, o Options) (*Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Time: start.UTC(), CPUs: runtime.NumCPU(), Go: runtime.Version(), Target: TargetRatio, AllPass: true,
		Options: ReportOptions{Rounds: o.Rounds, Brokers: o.Brokers, Partitions: o.Partitions, RecordBytes: o.RecordBytes, ShapeBytes: o.ShapeBytes, Store: "file"}}
	if o.Memory {
		rep.Options.Store = "memory"
	} else {
		rep.StoreDir = o.Dir
		if rep.StoreDir == "" {
			rep.StoreDir = os.TempDir()
		}
	}
	for _, shape := range o.Shapes {
		sr, err := measureShape(ctx, o, shape)
		if err != nil {
			return nil, fmt.Errorf("shape %s: %w", shape, err)
		}
		rep.Shapes = append(rep.Shapes, *sr)
		rep.AllPass = rep.AllPass && sr.Pass
	}
	rep.Elapsed = time.Since(start).Round(100 * time.Millisecond).String()
	return rep, nil
}

func measureShape(ctx context.Context, o Options, shape Shape) (*ShapeResult, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(o.Brokers), kfake.SeedTopics(int32(o.Partitions), topic))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	sr := &ShapeResult{Shape: shape.String(), Runs: map[string][]Run{}, Median: map[string]float64{}}
	if sr.Records, err = produceLog(ctx, c.ListenAddrs(), o, shape); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	hwms := map[int32]int64{}
	ends.Each(func(lo kadm.ListedOffset) { hwms[lo.Partition] = lo.Offset })

	for round := 0; round < o.Rounds; round++ {
		order := []string{MeasureConsume, MeasureBackfill, MeasureBackfillFetch}
		if round%2 == 1 {
			order = []string{MeasureBackfillFetch, MeasureBackfill, MeasureConsume}
		}
		var a *archive.Archive
		var cleanup func()
		for _, m := range order {
			var r Run
			switch m {
			case MeasureConsume:
				r, err = timed(func() (int64, error) { return consume(ctx, c.ListenAddrs(), hwms) })
				r.Bytes = 0 // filled in below: the log's batch bytes
			case MeasureBackfillFetch:
				r, err = timed(func() (int64, error) {
					b, err := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Sink: discard{}, Store: memstore.New(), Topics: []string{topic}, NoSnapshots: true})
					if err != nil {
						return 0, err
					}
					rep, err := b.Step(ctx)
					if err != nil {
						return 0, err
					}
					return rep.Bytes, nil
				})
			case MeasureBackfill:
				var store archive.Store
				store, cleanup, err = newStore(o)
				if err != nil {
					return nil, err
				}
				var stats archive.WriterStats
				var brep *archive.BackfillReport
				r, err = timed(func() (int64, error) {
					brep, stats, err = backfill(ctx, cl, store)
					if err != nil {
						return 0, err
					}
					return brep.Bytes, nil
				})
				if err == nil {
					sr.LogBytes, sr.ArchiveBytes, sr.Batches = brep.Bytes, stats.Bytes, brep.Batches
					a, err = archive.OpenArchive(ctx, store, nil)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m, err)
			}
			sr.Runs[m] = append(sr.Runs[m], r)
		}
		r, err := timed(func() (int64, error) {
			vr, err := archive.VerifyIntegrity(ctx, a.Store(), archive.VerifyOptions{})
			if err == nil && !vr.OK() {
				err = fmt.Errorf("verify found problems: %v", vr.Problems)
			}
			if err != nil {
				return 0, err
			}
			return vr.Bytes, nil
		})
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		sr.Runs[MeasureVerify] = append(sr.Runs[MeasureVerify], r)
		r, err = timed(func() (int64, error) {
			cmp, err := a.CompareWithCluster(ctx, archive.CompareOptions{Client: cl})
			if err == nil && (!cmp.OK() || cmp.Matched != sr.Records) {
				err = fmt.Errorf("archive != cluster: %d matched of %d, %d missing, %d differing", cmp.Matched, sr.Records, cmp.Missing, cmp.Differing)
			}
			if err != nil {
				return 0, err
			}
			return cmp.Bytes, nil
		})
		cleanup()
		if err != nil {
			return nil, fmt.Errorf("verify --against: %w", err)
		}
		sr.Runs[MeasureVerifyAgainst] = append(sr.Runs[MeasureVerifyAgainst], r)
		progressf(o, "%s round %d: consume %.0f MB/s, backfill %.0f MB/s (fetch side %.0f MB/s), verify %.0f MB/s, verify --against %.0f MB/s",
			shape, round+1, mbps(sr.LogBytes, last(sr.Runs[MeasureConsume]).Seconds), last(sr.Runs[MeasureBackfill]).MBps, last(sr.Runs[MeasureBackfillFetch]).MBps,
			last(sr.Runs[MeasureVerify]).MBps, last(sr.Runs[MeasureVerifyAgainst]).MBps)
	}
	for i := range sr.Runs[MeasureConsume] {
		r := &sr.Runs[MeasureConsume][i]
		r.Bytes, r.MBps = sr.LogBytes, mbps(sr.LogBytes, r.Seconds)
	}
	for m, runs := range sr.Runs {
		var v []float64
		for _, r := range runs {
			v = append(v, r.MBps)
		}
		slices.Sort(v)
		sr.Median[m] = v[len(v)/2]
	}
	sr.Ratio = sr.Median[MeasureBackfill] / sr.Median[MeasureConsume]
	sr.Pass = sr.Ratio >= TargetRatio
	return sr, nil
}

func last(rs []Run) Run { return rs[len(rs)-1] }

// discard is a Sink that keeps nothing.
type discard struct{}

func (discard) Write(context.Context, []archive.Batch, []archive.Event) error { return nil }

func progressf(o Options, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

func mbps(bytes int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / seconds
}

// timed runs fn after a garbage collection and measures its wall and CPU
// time; fn returns the bytes it moved.
func timed(fn func() (int64, error)) (Run, error) {
	runtime.GC()
	cpu0, t0 := runner.ProcessCPU(), time.Now()
	n, err := fn()
	el := time.Since(t0)
	return Run{Seconds: el.Seconds(), Bytes: n, MBps: mbps(n, el.Seconds()), CPUSec: (runner.ProcessCPU() - cpu0).Seconds()}, err
}

func newStore(o Options) (archive.Store, func(), error) {
	if o.Memory {
		return memstore.New(), func() {}, nil
	}
	dir, err := os.MkdirTemp(o.Dir, "amber-completeness-*")
	if err != nil {
		return nil, nil, err
	}
	s, err := file.New(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() { os.RemoveAll(dir) }, nil
}

// backfill fills store, empty, from the cluster with `amber backfill`'s
// settings, and waits for the last upload.
func backfill(ctx context.Context, cl *kgo.Client, store archive.Store) (*archive.BackfillReport, archive.WriterStats, error) {
	w, err := archive.NewWriter(ctx, archive.WriterOptions{Store: store, WriterID: archive.NewWriterID()})
	if err != nil {
		return nil, archive.WriterStats{}, err
	}
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Sink: w, Store: store, Topics: []string{topic}, NoSnapshots: true})
	if err != nil {
		return nil, archive.WriterStats{}, err
	}
	rep, err := b.Step(ctx)
	if err != nil {
		return nil, archive.WriterStats{}, err
	}
	if err := w.Flush(ctx); err != nil {
		return nil, archive.WriterStats{}, err
	}
	return rep, w.Stats(), nil
}

// consume reads every partition from its start up to hwms with a fresh
// franz-go consumer (default options, no group), visiting every record,
// and returns the record bytes (keys and values) it saw.
func consume(ctx context.Context, seeds []string, hwms map[int32]int64) (int64, error) {
	parts := map[int32]kgo.Offset{}
	left := 0
	for p, hwm := range hwms {
		if hwm > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var n int64
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return n, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			n += int64(len(r.Key) + len(r.Value))
			if r.Offset+1 == hwms[r.Partition] {
				left--
			}
		})
	}
	return n, nil
}

// produceLog writes o.ShapeBytes of o.RecordBytes values, incompressible
// but for a text prefix, batched as shape says, round-robin over the
// partitions.
func produceLog(ctx context.Context, seeds []string, o Options, shape Shape) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(int32(shape.BatchBytes)),
		kgo.ProducerBatchCompression(shape.Compression()), kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MaxBufferedBytes(256<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, uint64(shape.BatchBytes)))
	n := o.ShapeBytes / int64(o.RecordBytes)
	var first error
	errs := make(chan error, 1)
	for i := range n {
		v := make([]byte, o.RecordBytes)
		text := fmt.Appendf(nil, "record %d of the completeness benchmark; ", i)
		copy(v, text)
		for j := min(len(text), len(v)/2); j+8 <= len(v); j += 8 {
			u := rng.Uint64()
			for k := 0; k < 8; k++ {
				v[j+k] = byte(u >> (8 * k))
			}
		}
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", i%10000), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	select {
	case first = <-errs:
	default:
	}
	return n, first
}
