package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/protocol"
)

// Verify against a cluster (completeness and equality): for each
// partition, the range the cluster still holds, [log start, high
// watermark), is fetched read-uncommitted (markers and aborted data
// included) and compared record by record with the archive: offset, key,
// value, headers (order, null values) and timestamp. A record the cluster
// has and the archive lacks is missing; one both have with any field
// unequal is differing; one the archive has inside the range that the
// cluster no longer returns (compacted since it was archived) is
// archive-only, which is not a failure. Every archived batch read is
// CRC-checked too. Offsets below the log start are not compared: the
// cluster no longer has them (`amber ls` shows what the archive has
// there).

// DefaultMaxDifferences is how many differing records a comparison lists
// per partition (all are counted).
const DefaultMaxDifferences = 10

// maxMissingRanges is how many missing ranges a comparison lists per
// partition (all are counted).
const maxMissingRanges = 100

// CompareOptions configures CompareWithCluster.
type CompareOptions struct {
	// Client is a client of the cluster. Required.
	Client *kgo.Client
	// Topics to compare. Default: every topic of the cluster but
	// internal ones.
	Topics []string
	// Concurrency: partitions compared at once. Default
	// DefaultBackfillConcurrency.
	Concurrency int
	// FetchMaxBytes bounds one fetch response. Default
	// DefaultFetchMaxBytes.
	FetchMaxBytes int32
	// MaxDifferences listed per partition. Default DefaultMaxDifferences.
	MaxDifferences int
	// Progress, if set, is called with the offsets compared so far and
	// the total.
	Progress func(done, total int64)
}

// RecordDifference is one record that differs, and how.
type RecordDifference struct {
	Offset int64    `json:"offset"`
	Fields []string `json:"fields"` // key, value, headers, timestamp, crc
}

// PartitionComparison is one partition compared.
type PartitionComparison struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LogStartOffset int64  `json:"log_start_offset"`
	HighWatermark  int64  `json:"high_watermark"`
	Matched        int64  `json:"matched"`
	Missing        int64  `json:"missing"`
	Differing      int64  `json:"differing"`
	ArchiveOnly    int64  `json:"archive_only"`
	// MissingRanges are [start, end) offset ranges of missing records
	// (the first 100; MissingRangeCount counts all).
	MissingRanges     [][2]int64         `json:"missing_ranges"`
	MissingRangeCount int                `json:"missing_range_count"`
	Differences       []RecordDifference `json:"differences"`
	Bytes             int64              `json:"bytes"` // cluster batch bytes fetched
	Error             string             `json:"error,omitempty"`
}

// Comparison is an archive compared with a cluster.
type Comparison struct {
	Partitions  []PartitionComparison `json:"partitions"`
	Matched     int64                 `json:"matched"`
	Missing     int64                 `json:"missing"`
	Differing   int64                 `json:"differing"`
	ArchiveOnly int64                 `json:"archive_only"`
	Bytes       int64                 `json:"bytes"`
	Duration    time.Duration         `json:"duration_ns"`
}

// OK reports whether nothing is missing or differs and every partition
// could be compared.
func (c *Comparison) OK() bool {
	if c.Missing > 0 || c.Differing > 0 {
		return false
	}
	for _, p := range c.Partitions {
		if p.Error != "" {
			return false
		}
	}
	return true
}

// CompareWithCluster compares the archive with the cluster's data, record
// by record. The error is for a cluster that cannot be listed; failures
// of single partitions are in their comparison.
func (a *Archive) CompareWithCluster(ctx context.Context, opts CompareOptions) (*Comparison, error) {
	if opts.Client == nil {
		return nil, errors.New("compare: no client")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultBackfillConcurrency
	}
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = DefaultMaxDifferences
	}
	start := time.Now()
	adm := kadm.NewClient(opts.Client)
	parts, _, err := clusterPartitions(ctx, adm, opts.Topics)
	if err != nil {
		return nil, err
	}
	refs := a.partitions()
	// A topic deleted and created again is compared as it is now: the old
	// topic's batches at the same offsets are not the cluster's records.
	births, err := ArchiveTopicBirths(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("topic deletions: %w", err)
	}
	out := &Comparison{Partitions: make([]PartitionComparison, len(parts))}
	var total int64
	for _, pi := range parts {
		total += max(pi.hwm-pi.logStart, 0)
	}
	var (
		done  atomic.Int64
		wg    sync.WaitGroup
		queue = make(chan int)
	)
	progress := func(n int64) {
		if d := done.Add(n); opts.Progress != nil {
			opts.Progress(min(d, total), total)
		}
	}
	for w := 0; w < min(opts.Concurrency, max(len(parts), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				pi := &parts[i]
				pc := &out.Partitions[i]
				*pc = PartitionComparison{Topic: pi.topic, Partition: pi.partition, LogStartOffset: pi.logStart, HighWatermark: pi.hwm,
					MissingRanges: [][2]int64{}, Differences: []RecordDifference{}}
				if pi.err != nil {
					pc.Error = pi.err.Error()
					continue
				}
				c := &comparer{a: a, pi: pi, pc: pc, f: pi.fetcher(opts.Client, adm), maxBytes: opts.FetchMaxBytes,
					maxDiffs: opts.MaxDifferences, progress: progress, next: pi.logStart}
				if err := c.run(ctx, ackedAfter(refs[tp{pi.topic, pi.partition}], births[pi.topic])); err != nil {
					pc.Error = err.Error()
				}
			}
		}()
	}
	for i := range parts {
		queue <- i
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, pc := range out.Partitions {
		out.Matched += pc.Matched
		out.Missing += pc.Missing
		out.Differing += pc.Differing
		out.ArchiveOnly += pc.ArchiveOnly
		out.Bytes += pc.Bytes
	}
	out.Duration = time.Since(start)
	return out, nil
}

// comparer compares one partition: the archive's batches drive, the
// cluster's records are pulled as needed.
type comparer struct {
	a        *Archive
	pi       *partitionInfo
	pc       *PartitionComparison
	f        *partitionFetcher
	maxBytes int32
	maxDiffs int
	progress func(int64)

	next     int64             // next offset to fetch from the cluster
	recs     []protocol.Record // the cluster's records not compared yet
	done     bool              // the cluster has nothing more below hwm
	reported int64             // offsets reported to progress
	inMiss   bool              // the last record seen was missing
}

func (c *comparer) run(ctx context.Context, refs []batchRef) error {
	lo, hi := c.pi.logStart, c.pi.hwm
	if hi <= lo {
		return nil
	}
	err := c.a.scanRefs(ctx, refs, lo, func(b *Batch) error {
		if b.BaseOffset >= hi {
			return errStop
		}
		h, err := protocol.ParseBatchHeader(b.Data)
		if err != nil {
			return fmt.Errorf("archived batch at %d: %w", b.BaseOffset, err)
		}
		if err := protocol.CheckCRC(&h, b.Data); err != nil {
			return c.corrupt(ctx, b.BaseOffset, b.BaseOffset+h.Records())
		}
		recs, err := protocol.DecodeRecords(b.Data, &h, b.BaseOffset, codec)
		if err != nil {
			return fmt.Errorf("archived batch at %d: %w", b.BaseOffset, err)
		}
		for i := range recs {
			r := &recs[i]
			if r.Offset < lo || r.Offset >= hi {
				continue
			}
			if b.LogAppendTime >= 0 {
				r.Timestamp = b.LogAppendTime // the broker's, which the client's batch lacks
			}
			if err := c.archived(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	// The cluster's records past the archive's last.
	for {
		cr, err := c.peek(ctx)
		if err != nil {
			return err
		}
		if cr == nil {
			break
		}
		c.missing(cr.Offset)
		c.pop()
	}
	c.progress(hi - lo - c.reported)
	return nil
}

// archived compares one archived record with the cluster's at its offset,
// counting the cluster's records before it as missing.
func (c *comparer) archived(ctx context.Context, ar *protocol.Record) error {
	for {
		cr, err := c.peek(ctx)
		if err != nil {
			return err
		}
		switch {
		case cr == nil || cr.Offset > ar.Offset:
			c.pc.ArchiveOnly++
			return nil
		case cr.Offset < ar.Offset:
			c.missing(cr.Offset)
			c.pop()
			continue
		}
		c.inMiss = false
		if fields := diffRecords(cr, ar); len(fields) > 0 {
			c.differ(ar.Offset, fields)
		} else {
			c.pc.Matched++
		}
		c.pop()
		return nil
	}
}

// corrupt counts the cluster's records in [lo, hi), which an archived
// batch failing its CRC holds, as differing.
func (c *comparer) corrupt(ctx context.Context, lo, hi int64) error {
	for {
		cr, err := c.peek(ctx)
		if err != nil || cr == nil || cr.Offset >= hi {
			return err
		}
		if cr.Offset < lo {
			c.missing(cr.Offset)
		} else {
			c.differ(cr.Offset, []string{"crc"})
		}
		c.pop()
	}
}

func (c *comparer) missing(o int64) {
	c.pc.Missing++
	if n := len(c.pc.MissingRanges); c.inMiss && n > 0 && c.pc.MissingRanges[n-1][1] <= o {
		c.pc.MissingRanges[n-1][1] = o + 1
		return
	}
	c.inMiss = true
	c.pc.MissingRangeCount++
	if len(c.pc.MissingRanges) < maxMissingRanges {
		c.pc.MissingRanges = append(c.pc.MissingRanges, [2]int64{o, o + 1})
	}
}

func (c *comparer) differ(o int64, fields []string) {
	c.inMiss = false
	c.pc.Differing++
	if len(c.pc.Differences) < c.maxDiffs {
		c.pc.Differences = append(c.pc.Differences, RecordDifference{Offset: o, Fields: fields})
	}
}

func (c *comparer) pop() {
	c.recs = c.recs[1:]
}

// peek returns the cluster's next record below the high watermark, nil
// at the end, fetching as needed.
func (c *comparer) peek(ctx context.Context) (*protocol.Record, error) {
	for len(c.recs) == 0 {
		if c.done || c.next >= c.pi.hwm {
			return nil, nil
		}
		r, err := c.f.fetch(ctx, c.next, c.maxBytes)
		if errors.Is(err, errOutOfRange) {
			// Retention moved the log start past c.next during the
			// comparison: the cluster no longer has those records, so
			// they are not compared (the archive's count as archive-only).
			starts, lerr := c.f.adm.ListStartOffsets(ctx, c.pi.topic)
			if lerr != nil {
				return nil, fmt.Errorf("%w; list start offset: %v", err, lerr)
			}
			if s, ok := starts.Lookup(c.pi.topic, c.pi.partition); ok && s.Err == nil && s.Offset > c.next {
				c.next = s.Offset
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if len(r.batches) == 0 {
			c.done = true
			return nil, nil
		}
		before := c.next
		for _, raw := range r.batches {
			h, _ := protocol.ParseBatchHeader(raw)
			c.pc.Bytes += int64(len(raw))
			recs, err := protocol.DecodeRecords(raw, &h, h.FirstOffset, codec)
			if err != nil {
				return nil, fmt.Errorf("cluster batch at %d: %w", h.FirstOffset, err)
			}
			for _, rec := range recs {
				if rec.Offset >= c.next && rec.Offset < c.pi.hwm {
					c.recs = append(c.recs, rec)
				}
			}
			c.next = max(c.next, h.FirstOffset+h.Records())
		}
		if c.next == before {
			return nil, fmt.Errorf("fetch %s/%d@%d: the broker returned only batches before the offset asked for", c.pi.topic, c.pi.partition, before)
		}
		if n := min(c.next, c.pi.hwm) - c.pi.logStart - c.reported; n > 0 {
			c.reported += n
			c.progress(n)
		}
	}
	return &c.recs[0], nil
}

// diffRecords names the fields in which two records at one offset differ.
func diffRecords(a, b *protocol.Record) []string {
	var out []string
	if !sameBytes(a.Key, b.Key) {
		out = append(out, "key")
	}
	if !sameBytes(a.Value, b.Value) {
		out = append(out, "value")
	}
	same := len(a.Headers) == len(b.Headers)
	for i := 0; same && i < len(a.Headers); i++ {
		same = a.Headers[i].Key == b.Headers[i].Key && sameBytes(a.Headers[i].Value, b.Headers[i].Value)
	}
	if !same {
		out = append(out, "headers")
	}
	if a.Timestamp != b.Timestamp {
		out = append(out, "timestamp")
	}
	return out
}

// sameBytes is bytes.Equal that tells null from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}
