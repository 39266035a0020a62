package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Backfill: the proxy sees only what passes through it. Records produced
// around it (another producer, the proxy down, acks=0, a batch the journal
// refused) and transaction markers (brokers write them, never clients)
// are holes in a partition's offsets. A backfill compares, per partition,
// what the archive holds with the cluster's [log start, high watermark)
// and fetches exactly the missing ranges with raw read-uncommitted Fetch
// requests, so markers and aborted data arrive as the batches the broker
// stores, at their offsets. Whole batches are kept (those overlapping a
// hole) and stored as backfilledBatch describes.
//
// What the cluster no longer has is recorded as a known loss: offsets
// below its log start that the archive never had (LossDeleted), and
// offsets inside a fetched range the broker does not return (LossCompacted).
// A backfill also snapshots topic configs and group offsets (snapshot.go).
//
//	b, _ := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Store: store, Sink: w})
//	rep, err := b.Step(ctx)       // one pass: amber backfill
//	b.Start(time.Minute)          // or a pass a minute: amber proxy
//
// Holes are found from the archive's indexes (and the journal, if given),
// so a backfill reads no archived data.

// Defaults for BackfillOptions.
const (
	// DefaultBackfillClientID is the client id stored with backfilled
	// batches and events: what tells them apart from teed ones.
	DefaultBackfillClientID    = "amber-backfill"
	DefaultBackfillConcurrency = 4
)

// BackfillOptions configures a Backfiller.
type BackfillOptions struct {
	// Client is a client of the cluster. Required. The backfill sends
	// Metadata, ListOffsets, Fetch, DescribeConfigs, ListGroups and
	// OffsetFetch.
	Client *kgo.Client
	// Sink receives the batches and events. Required.
	Sink Sink
	// Store is the archive whose coverage decides what is missing.
	// Required. Key decrypts it.
	Store Store
	Key   *Key
	// Journal, if set, holds batches (and known losses) not uploaded to
	// Store yet that count as archived: the proxy's own journal.
	Journal *Journal
	// Topics to backfill. Default: every topic but internal ones.
	Topics []string
	// NoSnapshots turns off topic config and group offset snapshots.
	NoSnapshots bool
	// Settle leaves the newest offsets for a later pass: only offsets
	// below a high watermark observed at least Settle ago are fetched.
	// A proxy sets it, because a batch the broker has acknowledged may
	// still be on its way into the proxy's own journal. Default 0: up to
	// the high watermark now.
	Settle time.Duration
	// Concurrency is how many partitions are fetched at once. Default
	// DefaultBackfillConcurrency.
	Concurrency int
	// FetchMaxBytes bounds one fetch response. Default
	// DefaultFetchMaxBytes.
	FetchMaxBytes int32
	// ClientID is stored as the client id of what the backfill writes.
	// Default DefaultBackfillClientID.
	ClientID string
	// Progress, if set, is called as offsets are fetched with the
	// offsets done and the total missing at the start of the pass.
	Progress func(done, total int64)
	// Logger, default nop.
	Logger *zap.Logger
}

// PartitionBackfill is what one pass did for one partition.
type PartitionBackfill struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LogStartOffset int64  `json:"log_start_offset"`
	HighWatermark  int64  `json:"high_watermark"`
	// Missing are the ranges the archive lacked inside [log start, high
	// watermark) (up to the settled high watermark) before the pass.
	Missing [][2]int64 `json:"missing"`
	// Offsets, Batches and Bytes are what was fetched and written
	// (whole batches: Offsets counts every offset they span).
	Offsets int64 `json:"offsets"`
	Batches int64 `json:"batches"`
	Bytes   int64 `json:"bytes"`
	// KnownLoss are losses recorded by this pass.
	KnownLoss []LossRange `json:"known_loss"`
	Error     string      `json:"error,omitempty"`
}

// BackfillReport is what one pass did.
type BackfillReport struct {
	Start      time.Time           `json:"start"`
	Duration   time.Duration       `json:"duration_ns"`
	Partitions []PartitionBackfill `json:"partitions"`
	Offsets    int64               `json:"offsets"`
	Batches    int64               `json:"batches"`
	Bytes      int64               `json:"bytes"`
	KnownLoss  int64               `json:"known_loss_offsets"` // recorded by this pass
	// ConfigSnapshots and GroupSnapshots count the snapshots written
	// (a long-running backfiller writes only those that changed).
	ConfigSnapshots int      `json:"config_snapshots"`
	GroupSnapshots  int      `json:"group_snapshots"`
	Errors          []string `json:"errors,omitempty"`
}

// BackfillStats are a Backfiller's cumulative counters.
type BackfillStats struct {
	Passes, FailedPasses       int64
	Batches, Bytes, LossOffset int64
	LastPass                   time.Time
	LastError                  string
}

// Backfiller runs backfill passes: Step once (amber backfill), or Start
// for a pass every interval (the proxy). It keeps, between passes, the
// archive's indexes (refreshed, not reread), the high watermarks Settle
// needs and the snapshots last written.
type Backfiller struct {
	opts BackfillOptions
	log  *zap.Logger
	adm  *kadm.Client

	stepMu sync.Mutex // serialises Step; guards the fields below
	arch   *Archive
	hwms   map[tp][]hwmObs
	snaps  map[string][32]byte

	stop, done chan struct{}
	once       sync.Once
	started    atomic.Bool

	stats struct {
		passes, failed, batches, bytes, loss, last atomic.Int64
		mu                                         sync.Mutex
		lastErr                                    error
	}
}

type hwmObs struct {
	at  time.Time
	hwm int64
}

// NewBackfiller validates opts.
func NewBackfiller(opts BackfillOptions) (*Backfiller, error) {
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultBackfillConcurrency
	}
	if opts.FetchMaxBytes == 0 {
		opts.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultBackfillClientID
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("backfill: no client"))
	}
	if opts.Sink == nil {
		errs = append(errs, errors.New("backfill: no sink"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("backfill: no store"))
	}
	if opts.Concurrency < 1 || opts.FetchMaxBytes < minFetchBytes || opts.Settle < 0 {
		errs = append(errs, fmt.Errorf("backfill: concurrency %d, fetch max bytes %d, settle %s: want at least 1, 64 KiB and 0", opts.Concurrency, opts.FetchMaxBytes, opts.Settle))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Backfiller{
		opts: opts, log: opts.Logger.With(zap.String("component", "backfill")), adm: kadm.NewClient(opts.Client),
		hwms: map[tp][]hwmObs{}, snaps: map[string][32]byte{}, stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// Start runs a pass every interval until Stop.
func (b *Backfiller) Start(interval time.Duration) {
	b.started.Store(true)
	go b.loop(interval)
}

// Stop ends the loop, cancelling a running pass. Safe to call twice.
func (b *Backfiller) Stop() {
	b.once.Do(func() {
		close(b.stop)
		if b.started.Load() {
			<-b.done
		}
	})
}

func (b *Backfiller) loop(interval time.Duration) {
	defer close(b.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-b.stop; cancel() }()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		rep, err := b.Step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.log.Warn("backfill pass failed; the next pass retries", zap.Error(err), zap.Duration("in", interval))
		case rep.Offsets > 0 || rep.KnownLoss > 0:
			b.log.Info("backfilled", zap.Int64("offsets", rep.Offsets), zap.Int64("batches", rep.Batches),
				zap.Int64("bytes", rep.Bytes), zap.Int64("known_loss_offsets", rep.KnownLoss), zap.Duration("took", rep.Duration))
		}
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
	}
}

// Stats returns the backfiller's counters.
func (b *Backfiller) Stats() BackfillStats {
	s := BackfillStats{Passes: b.stats.passes.Load(), FailedPasses: b.stats.failed.Load(), Batches: b.stats.batches.Load(),
		Bytes: b.stats.bytes.Load(), LossOffset: b.stats.loss.Load()}
	if t := b.stats.last.Load(); t != 0 {
		s.LastPass = time.Unix(0, t)
	}
	b.stats.mu.Lock()
	if b.stats.lastErr != nil {
		s.LastError = b.stats.lastErr.Error()
	}
	b.stats.mu.Unlock()
	return s
}

// partPlan is what a pass must do for one partition.
type partPlan struct {
	info      partitionInfo
	holes     []span    // to fetch, sorted
	have      []span    // archived (coverage), sorted
	known     []span    // known losses already recorded, sorted
	perOffset float64   // average archived bytes per offset, 0 unknown
	born      time.Time // the topic's last deletion (births.go), zero if none
	rep       *PartitionBackfill
}

// Step runs one backfill pass and reports what it did. A partition that
// fails is reported (and makes Step return an error) without stopping
// the others.
func (b *Backfiller) Step(ctx context.Context) (*BackfillReport, error) {
	b.stepMu.Lock()
	defer b.stepMu.Unlock()
	rep, err := b.step(ctx)
	b.stats.passes.Add(1)
	b.stats.last.Store(time.Now().UnixNano())
	if err != nil {
		b.stats.failed.Add(1)
	}
	b.stats.mu.Lock()
	b.stats.lastErr = err
	b.stats.mu.Unlock()
	return rep, err
}

func (b *Backfiller) step(ctx context.Context) (*BackfillReport, error) {
	now := time.Now()
	rep := &BackfillReport{Start: now.UTC(), Partitions: []PartitionBackfill{}}
	defer func() { rep.Duration = time.Since(now) }()

	// What the archive holds. A batch uploaded between reading the
	// indexes and reading the journal is in neither and is fetched
	// again: a second copy, which readers count once.
	if b.arch == nil {
		a, err := OpenArchive(ctx, b.opts.Store, b.opts.Key)
		if err != nil {
			return rep, err
		}
		b.arch = a
	} else if err := b.arch.Refresh(ctx); err != nil {
		return rep, err
	}
	births, err := b.births(ctx)
	if err != nil {
		return rep, fmt.Errorf("topic deletions: %w", err)
	}
	cov, err := combinedCoverage(b.arch, b.opts.Journal, births)
	if err != nil {
		return rep, fmt.Errorf("coverage: %w", err)
	}
	byTP := make(map[tp]*PartitionCoverage, len(cov))
	for i := range cov {
		byTP[tp{cov[i].Topic, cov[i].Partition}] = &cov[i]
	}

	// What the cluster holds.
	parts, details, err := clusterPartitions(ctx, b.adm, b.opts.Topics)
	if err != nil {
		return rep, err
	}
	rep.Partitions = make([]PartitionBackfill, len(parts))
	plans := make([]*partPlan, 0, len(parts))
	var total int64
	for i, pi := range parts {
		r := &rep.Partitions[i]
		*r = PartitionBackfill{Topic: pi.topic, Partition: pi.partition, LogStartOffset: pi.logStart, HighWatermark: pi.hwm,
			Missing: [][2]int64{}, KnownLoss: []LossRange{}}
		if pi.err != nil {
			r.Error = pi.err.Error()
			continue
		}
		k := tp{pi.topic, pi.partition}
		p := &partPlan{info: pi, rep: r, born: births[pi.topic]}
		if c := byTP[k]; c != nil {
			p.have = c.covered()
			for _, l := range c.KnownLoss {
				p.known = append(p.known, span{l.Start, l.End})
			}
			p.known = unionSpans(p.known)
			if n := c.EndOffset - c.StartOffset; n > 0 && c.Bytes > 0 {
				p.perOffset = float64(c.Bytes) / float64(n)
			}
		}
		upper := b.settled(k, now, pi.hwm)
		if upper > pi.logStart {
			p.holes = subtractSpans(subtractSpans([]span{{pi.logStart, upper}}, p.have), p.known)
		}
		for _, h := range p.holes {
			r.Missing = append(r.Missing, [2]int64{h.lo, h.hi})
			total += h.hi - h.lo
		}
		plans = append(plans, p)
	}

	// Fetch, a few partitions at a time.
	var (
		done  atomic.Int64
		wg    sync.WaitGroup
		queue = make(chan *partPlan)
	)
	progress := func(n int64) {
		if d := done.Add(n); b.opts.Progress != nil {
			b.opts.Progress(min(d, total), total)
		}
	}
	for w := 0; w < min(b.opts.Concurrency, max(len(plans), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range queue {
				if err := b.backfillPartition(ctx, p, now, progress); err != nil {
					p.rep.Error = err.Error()
				}
			}
		}()
	}
	for _, p := range plans {
		queue <- p
	}
	close(queue)
	wg.Wait()

	var errs []error
	for i := range rep.Partitions {
		r := &rep.Partitions[i]
		rep.Offsets += r.Offsets
		rep.Batches += r.Batches
		rep.Bytes += r.Bytes
		for _, l := range r.KnownLoss {
			rep.KnownLoss += l.End - l.Start
		}
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("%s/%d: %s", r.Topic, r.Partition, r.Error))
		}
	}
	b.stats.batches.Add(rep.Batches)
	b.stats.bytes.Add(rep.Bytes)
	b.stats.loss.Add(rep.KnownLoss)

	if !b.opts.NoSnapshots && ctx.Err() == nil {
		snaps, serrs := snapshots(ctx, b.adm, details, b.opts.Topics, now.UTC(), b.opts.ClientID)
		errs = append(errs, serrs...)
		var events []Event
		for i := range snaps {
			s := &snaps[i]
			sum := s.sum()
			if b.snaps[s.subject] == sum {
				continue // unchanged since this backfiller last wrote it
			}
			events = append(events, s.ev)
			switch s.ev.Kind {
			case KindConfigSnapshot:
				rep.ConfigSnapshots++
			case KindGroupOffsetsSnapshot:
				rep.GroupSnapshots++
			}
		}
		if len(events) > 0 {
			if err := b.opts.Sink.Write(ctx, nil, events); err != nil {
				errs = append(errs, fmt.Errorf("write snapshots: %w", err))
				rep.ConfigSnapshots, rep.GroupSnapshots = 0, 0
			} else {
				for i := range snaps {
					b.snaps[snaps[i].subject] = snaps[i].sum()
				}
			}
		}
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	return rep, errors.Join(errs...)
}

// births is each topic's last deletion: the journal's record of them for
// a proxy's backfill, else the archive's events (amber backfill). A
// topic deleted and created again counts as archived only what was
// acknowledged after, so that the old topic's batches do not hide what
// the new one is missing at the same offsets.
func (b *Backfiller) births(ctx context.Context) (map[string]time.Time, error) {
	if b.opts.Journal != nil {
		return b.opts.Journal.TopicBirths(), nil
	}
	return ArchiveTopicBirths(ctx, b.arch)
}

// settled records this pass's high watermark of a partition and returns
// the highest offset a pass may fetch up to: the newest watermark
// observed at least Settle ago (or now, with no Settle). Before one is,
// nothing is fetched.
func (b *Backfiller) settled(k tp, now time.Time, hwm int64) int64 {
	hist := append(b.hwms[k], hwmObs{now, hwm})
	i := sort.Search(len(hist), func(i int) bool { return hist[i].at.After(now.Add(-b.opts.Settle)) }) - 1
	upper := int64(-1)
	if i >= 0 {
		upper = min(hist[i].hwm, hwm)
		hist = hist[i:]
	}
	b.hwms[k] = hist
	return upper
}

// backfillPartition fetches a partition's holes, writes the batches that
// overlap them and records what the cluster no longer has.
func (b *Backfiller) backfillPartition(ctx context.Context, p *partPlan, now time.Time, progress func(int64)) error {
	var (
		pi      = p.info
		f       = pi.fetcher(b.opts.Client, b.adm)
		losses  []LossRange
		fetched []span // batches kept, merged; all below cursor
		hi      int    // the first hole not wholly behind cursor
		cursor  int64
		last    int64 // end of the last hole
	)
	if len(p.holes) > 0 {
		cursor, last = p.holes[0].lo, p.holes[len(p.holes)-1].hi
	}
	// lose records the holes in [lo, hi) as lost; lo is always cursor, so
	// nothing fetched lies there.
	lose := func(lo, hi int64, reason string) {
		for _, s := range intersectSpans([]span{{lo, hi}}, p.holes) {
			losses = append(losses, LossRange{Start: s.lo, End: s.hi, Reason: reason})
			progress(s.hi - s.lo)
		}
	}
	for cursor < last && ctx.Err() == nil {
		for hi < len(p.holes) && p.holes[hi].hi <= cursor {
			hi++
		}
		if hi == len(p.holes) {
			break
		}
		cursor = max(cursor, p.holes[hi].lo)
		r, err := f.fetch(ctx, cursor, fetchBytes(p.holes[hi].hi-cursor, p.perOffset, b.opts.FetchMaxBytes))
		if errors.Is(err, errOutOfRange) {
			// Retention moved the log start past cursor since the
			// offsets were listed: what lies below it is lost.
			starts, lerr := b.adm.ListStartOffsets(ctx, pi.topic)
			if lerr != nil {
				return fmt.Errorf("%w; list start offset: %v", err, lerr)
			}
			s, ok := starts.Lookup(pi.topic, pi.partition)
			if !ok || s.Err != nil || s.Offset <= cursor {
				return err
			}
			lose(cursor, s.Offset, LossDeleted)
			cursor = s.Offset
			continue
		}
		if err != nil {
			return err
		}
		if len(r.batches) == 0 {
			// Nothing at or after cursor below the high watermark:
			// compacted away. (A high watermark at or below cursor
			// is a truncated log, whose offsets new records will
			// reuse: not a loss; the next pass plans again.)
			if r.hwm > cursor {
				lose(cursor, min(last, r.hwm), LossCompacted)
			}
			break
		}
		var keep []Batch
		before := cursor
		for _, raw := range r.batches {
			bt, h := backfilledBatch(pi.topic, pi.partition, raw, b.opts.ClientID, now, p.born)
			base, end := bt.BaseOffset, bt.BaseOffset+h.Records()
			if end <= cursor {
				continue
			}
			if base > cursor {
				lose(cursor, base, LossCompacted) // absent from the log
			}
			if in := intersectSpans([]span{{max(base, cursor), end}}, p.holes); len(in) > 0 {
				keep = append(keep, bt)
				if n := len(fetched); n > 0 && base <= fetched[n-1].hi {
					fetched[n-1].hi = max(fetched[n-1].hi, end)
				} else {
					fetched = append(fetched, span{base, end})
				}
				p.rep.Batches++
				p.rep.Bytes += int64(len(bt.Data))
				p.rep.Offsets += end - base
				for _, s := range in {
					progress(s.hi - s.lo)
				}
			}
			cursor = end
			if cursor >= last {
				break
			}
		}
		if cursor == before {
			return fmt.Errorf("fetch %s/%d@%d: the broker returned only batches before the offset asked for", pi.topic, pi.partition, cursor)
		}
		if len(keep) > 0 {
			var err error
			if ow, ok := b.opts.Sink.(interface {
				writeOwned(context.Context, []Batch, []Event) error
			}); ok {
				err = ow.writeOwned(ctx, keep, nil) // the fetch response is ours alone
			} else {
				err = b.opts.Sink.Write(ctx, keep, nil)
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Below the log start: whatever neither the archive nor this pass
	// has, and no earlier pass recorded, is gone.
	if pi.logStart > 0 {
		gone := subtractSpans([]span{{0, pi.logStart}}, unionSpans(append(append(append([]span(nil), p.have...), p.known...), fetched...)))
		for _, s := range gone {
			losses = append(losses, LossRange{Start: s.lo, End: s.hi, Reason: LossDeleted})
		}
	}
	if len(losses) == 0 {
		return nil
	}
	losses = mergeLosses(losses)
	events := make([]Event, 0, len(losses))
	for _, l := range losses {
		events = append(events, Event{Time: now.UTC(), Kind: KindKnownLoss, ClientID: b.opts.ClientID, Body: mustJSON(KnownLossEvent{
			Topic: pi.topic, Partition: pi.partition, Start: l.Start, End: l.End, Reason: l.Reason,
			LogStartOffset: pi.logStart, HighWatermark: pi.hwm,
		})})
	}
	if err := b.opts.Sink.Write(ctx, nil, events); err != nil {
		return fmt.Errorf("write known loss: %w", err)
	}
	p.rep.KnownLoss = append(p.rep.KnownLoss, losses...)
	return nil
}
