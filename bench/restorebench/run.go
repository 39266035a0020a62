package restorebench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
	"github.com/amber-kafka/amber/restore"
)

// Sample is one run of one mode.
type Sample struct {
	Round      int     `json:"round"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	MBPerSec   float64 `json:"mb_per_sec"`
	CPUPerGB   float64 `json:"cpu_sec_per_gb"`
	MBPerCore  float64 `json:"mb_per_cpu_sec"`
}

// Run measures every shape o selects in every mode, o.Rounds times.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	rep := newReport(&o, began)
	b := &bencher{o: &o}
	defer b.close()
	for si, shape := range o.Shapes {
		w, err := NewWorkload(ctx, shape, o)
		if err != nil {
			return nil, fmt.Errorf("build the %s workload: %w", shape, err)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%-8s %d records, %d batches, %.1f MB as produced, %.1f MB archived\n",
				shape, w.Records, w.Batches, float64(w.WireBytes)/1e6, float64(w.ArchiveBytes)/1e6)
		}
		sr := ShapeResult{Shape: shape.String(), Records: w.Records, RecordBytes: w.RecordBytes, Batches: w.Batches,
			WireBytes: w.WireBytes, ArchiveBytes: w.ArchiveBytes}
		runs := map[string][]Sample{}
		for round := range o.Rounds {
			order := slices.Clone(o.Modes)
			k := round % len(order)
			order = append(order[k:], order[:k]...) // rotate: every mode takes every place
			for _, m := range order {
				s, note, err := b.runOne(ctx, m, w, fmt.Sprintf("s%d-%s-r%d", si, m, round))
				if err != nil {
					return nil, fmt.Errorf("%s, %s run of round %d: %w", shape, m, round+1, err)
				}
				if note != "" && !slices.Contains(rep.Notes, note) {
					rep.Notes = append(rep.Notes, note)
				}
				s.Round = round + 1
				runs[m] = append(runs[m], s)
				if o.Progress != nil {
					fmt.Fprintf(o.Progress, "%-8s %-18s round %d/%d  %7.1f MB/s  %6.2f CPU s/GB  %7.1f MB/s per core\n",
						shape, m, round+1, o.Rounds, s.MBPerSec, s.CPUPerGB, s.MBPerCore)
				}
			}
		}
		for _, m := range o.Modes {
			sr.Modes = append(sr.Modes, newModeResult(m, runs[m]))
		}
		sr.compare()
		rep.Shapes = append(rep.Shapes, sr)
	}
	rep.Machine.Load[1] = loadAverage()
	rep.Elapsed = time.Since(began).Round(100 * time.Millisecond).String()
	return rep, nil
}

// bencher holds the clusters, started as first needed.
type bencher struct {
	o         *Options
	clusters  map[bool]*cluster // by blackhole
	startedMu sync.Mutex
}

type cluster struct {
	c   *kfake.Cluster
	adm *kadm.Client
	cl  *kgo.Client
}

func blackhole(mode string) bool { return strings.HasSuffix(mode, "-blackhole") }

func (b *bencher) cluster(blackholed bool) (*cluster, error) {
	b.startedMu.Lock()
	defer b.startedMu.Unlock()
	if c := b.clusters[blackholed]; c != nil {
		return c, nil
	}
	opts := []kfake.Opt{kfake.NumBrokers(b.o.Brokers)}
	if blackholed {
		opts = append(opts, kfake.BlackholeProduce())
	}
	var (
		c   *kfake.Cluster
		err error
	)
	// kfake's goroutines, started here, carry bench=kfake.
	pprof.Do(context.Background(), pprof.Labels("bench", "kfake"), func(context.Context) {
		c, err = kfake.NewCluster(opts...)
	})
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, err
	}
	if b.clusters == nil {
		b.clusters = map[bool]*cluster{}
	}
	cc := &cluster{c: c, adm: kadm.NewClient(cl), cl: cl}
	b.clusters[blackholed] = cc
	return cc, nil
}

func (b *bencher) close() {
	for _, c := range b.clusters {
		c.cl.Close()
		c.c.Close()
	}
}

// runOne writes w into a fresh topic in mode m and checks that it all
// arrived. note, if set, is something the report should say.
func (b *bencher) runOne(ctx context.Context, m string, w *Workload, topic string) (s Sample, note string, err error) {
	c, err := b.cluster(blackhole(m))
	if err != nil {
		return s, "", err
	}
	if err := c.createTopic(ctx, topic, b.o.Partitions); err != nil {
		return s, "", err
	}
	defer c.deleteTopic(topic)

	var opts []kgo.Opt
	var recs []*kgo.Record
	producing := strings.HasPrefix(m, ModeProduce)
	if producing {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(int32(w.Shape.BatchBytes)),
			kgo.ProducerBatchCompression(w.Shape.Compression()))
		recs = w.produceRecords(topic)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		return s, "", err
	}
	defer cl.Close()

	var rep *restore.Report
	runtime.GC()
	cpu0, t0 := runner.ProcessCPU(), time.Now()
	pprof.Do(ctx, pprof.Labels("bench", m), func(ctx context.Context) {
		if producing {
			err = produce(ctx, cl, recs)
		} else {
			rep, err = restore.Run(ctx, restore.Options{Archive: w.Archive, Client: cl, Logger: b.o.Logger,
				Topics:      []restore.TopicMapping{restore.MustTopicMapping(sourceTopic + ":" + topic)},
				UntilOffset: -1, Partition: -1, Parallelism: b.o.Parallelism})
		}
	})
	secs, cpu := time.Since(t0).Seconds(), (runner.ProcessCPU() - cpu0).Seconds()
	if err != nil {
		return s, "", err
	}
	mb := float64(w.RecordBytes) / 1e6
	s = Sample{Seconds: secs, CPUSeconds: cpu, MBPerSec: mb / secs}
	if cpu > 0 {
		s.CPUPerGB, s.MBPerCore = cpu/(mb/1000), mb/cpu
	}

	if err := c.checkEnds(ctx, topic, w); err != nil {
		return s, "", err
	}
	if rep != nil {
		if err := checkReport(rep, w); err != nil {
			if !blackhole(m) {
				return s, "", err
			}
			note = "into BlackholeProduce, the restore's offset map is wrong: " + err.Error()
		}
	}
	return s, note, nil
}

// produce writes recs with cl and waits for every acknowledgement.
func produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	var (
		mu    sync.Mutex
		first error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		}
	}
	for _, r := range recs {
		cl.Produce(ctx, r, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return fmt.Errorf("produce: %w", first)
	}
	return nil
}

func (c *cluster) createTopic(ctx context.Context, topic string, partitions int) error {
	resp, err := c.adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// Wait until every partition answers, so no run pays for a topic
	// that is still being set up.
	for attempt := 0; ; attempt++ {
		ends, err := c.adm.ListEndOffsets(ctx, topic)
		ok := err == nil && ends.Error() == nil && len(ends[topic]) == partitions
		if ok {
			return nil
		}
		if attempt >= 100 {
			return fmt.Errorf("topic %s not ready: %v", topic, errors.Join(err, ends.Error()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) deleteTopic(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.adm.DeleteTopics(ctx, topic)
}

// checkEnds checks that every partition of topic ends where the workload
// does.
func (c *cluster) checkEnds(ctx context.Context, topic string, w *Workload) error {
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	for p := range w.parts {
		o, _ := ends.Lookup(topic, int32(p))
		if want := w.partitionRecords(p); o.Offset != want {
			return fmt.Errorf("%s/%d ends at %d, want %d", topic, p, o.Offset, want)
		}
	}
	return nil
}

// checkReport checks the restore's report: everything replayed whole, and
// an offset map of one range per partition from target offset 0.
func checkReport(rep *restore.Report, w *Workload) error {
	if len(rep.Topics) != 1 {
		return fmt.Errorf("restored %d topics, want 1", len(rep.Topics))
	}
	for _, p := range rep.Topics[0].Partitions {
		want := w.partitionRecords(int(p.Partition))
		switch {
		case p.Records != want:
			return fmt.Errorf("partition %d: restored %d records, want %d", p.Partition, p.Records, want)
		case p.Reencoded != 0:
			return fmt.Errorf("partition %d: %d batches re-encoded, want none", p.Partition, p.Reencoded)
		case len(p.OffsetMap) != 1 || p.OffsetMap[0] != (restore.OffsetRange{SourceStart: 0, SourceEnd: want, TargetStart: 0}):
			return fmt.Errorf("partition %d: offset map %+v, want [{0 %d 0}]", p.Partition, p.OffsetMap, want)
		}
	}
	return nil
}
