package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/protocol"
)

// Defaults for fetching from the cluster (backfill, verify --against).
const (
	// DefaultFetchMaxBytes bounds one fetch response of one partition:
	// what Kafka's own consumers ask per partition (max.partition.fetch.
	// bytes). Larger responses read no faster (a broker copies, or
	// sends, the same bytes either way) and make the broker build, and
	// the client hold, bigger buffers.
	DefaultFetchMaxBytes = 1 << 20
	// minFetchBytes is the smallest partition max bytes asked for, even
	// for a one-offset hole (a transaction marker).
	minFetchBytes = 64 << 10
	fetchAttempts = 8
)

// errOutOfRange is a fetch below the log start (retention ran meanwhile)
// or past the end.
var errOutOfRange = errors.New("offset out of range")

// partitionFetcher reads one partition's log with raw Fetch requests to
// its leader, read-uncommitted, so that transaction markers and aborted
// data come back as the batches the broker stores, at their offsets.
// kgo's consumer cannot do this: it drops control batches and decodes
// records.
type partitionFetcher struct {
	cl        *kgo.Client
	adm       *kadm.Client
	topic     string
	id        [16]byte
	partition int32
	leader    int32
}

// fetchResult is one fetch response of the partition.
type fetchResult struct {
	batches  [][]byte // whole batches, in offset order; alias the response
	logStart int64
	hwm      int64
}

// fetch asks for the partition's log from offset, retrying leader moves
// and retriable errors.
func (f *partitionFetcher) fetch(ctx context.Context, offset int64, maxBytes int32) (fetchResult, error) {
	var last error
	for attempt := 0; attempt < fetchAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fetchResult{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
			if err := f.refreshLeader(ctx); err != nil {
				last = err
				continue
			}
		}
		r, err := f.fetchOnce(ctx, offset, maxBytes)
		if err == nil || errors.Is(err, errOutOfRange) || ctx.Err() != nil {
			return r, err
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable && ke != kerr.NotLeaderForPartition && ke != kerr.UnknownTopicOrPartition {
			return r, err
		}
		last = err
	}
	return fetchResult{}, fmt.Errorf("fetch %s/%d@%d: %w", f.topic, f.partition, offset, last)
}

func (f *partitionFetcher) fetchOnce(ctx context.Context, offset int64, maxBytes int32) (fetchResult, error) {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	req.IsolationLevel = 0 // read uncommitted: markers and aborted data too
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = f.topic, f.id // by name to v12, by id from v13
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = f.partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := f.cl.Broker(int(f.leader)).RetriableRequest(ctx, req)
	if err != nil {
		return fetchResult{}, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fetchResult{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fetchResult{}, fmt.Errorf("fetch %s/%d: %d topics in the response, want 1", f.topic, f.partition, len(resp.Topics))
	}
	p := &resp.Topics[0].Partitions[0]
	r := fetchResult{logStart: p.LogStartOffset, hwm: p.HighWatermark}
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		if err == kerr.OffsetOutOfRange {
			return r, fmt.Errorf("fetch %s/%d@%d: %w", f.topic, f.partition, offset, errOutOfRange)
		}
		return r, err
	}
	b := p.RecordBatches
	for len(b) >= protocol.BatchHeaderLen {
		h, err := protocol.ParseBatchHeader(b)
		if err != nil {
			// A partial batch at the end (older brokers cut the response
			// at max bytes) is fetched again next time; anything else is
			// not a v2 batch.
			if len(r.batches) > 0 || int(binary.BigEndian.Uint32(b[8:]))+12 > len(b) {
				break
			}
			return r, fmt.Errorf("fetch %s/%d@%d: %w", f.topic, f.partition, offset, err)
		}
		if err := protocol.CheckCRC(&h, b); err != nil {
			return r, fmt.Errorf("fetch %s/%d@%d: batch at %d: %w", f.topic, f.partition, offset, h.FirstOffset, err)
		}
		r.batches = append(r.batches, b[:h.Size()])
		b = b[h.Size():]
	}
	return r, nil
}

// refreshLeader looks the partition's leader up again.
func (f *partitionFetcher) refreshLeader(ctx context.Context) error {
	md, err := f.adm.Metadata(ctx, f.topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[f.topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("metadata %s: %v", f.topic, td.Err)
	}
	pd, ok := td.Partitions[f.partition]
	if !ok || pd.Leader < 0 {
		return fmt.Errorf("%s/%d has no leader", f.topic, f.partition)
	}
	f.leader, f.id = pd.Leader, td.ID
	return nil
}

// fetchBytes sizes a fetch for a hole of n offsets given the bytes an
// offset takes on average (0: unknown): about twice what the hole should
// hold, so a one-offset hole (a marker) does not pull megabytes of data
// that is archived already.
func fetchBytes(n int64, perOffset float64, maxBytes int32) int32 {
	if perOffset <= 0 {
		perOffset = 1 << 10
	}
	want := float64(n) * perOffset * 2
	if want >= float64(maxBytes) {
		return maxBytes
	}
	return int32(min(max(int64(want), minFetchBytes), int64(maxBytes)))
}

// partitionInfo is a partition as the cluster's metadata and offsets
// describe it.
type partitionInfo struct {
	topic     string
	id        [16]byte
	partition int32
	leader    int32
	replicas  int
	logStart  int64
	hwm       int64
	err       error
}

// clusterPartitions lists the partitions of topics (every non-internal
// topic if none) with their leaders, log start offsets and high
// watermarks. A named topic the cluster does not have is an error.
func clusterPartitions(ctx context.Context, adm *kadm.Client, topics []string) ([]partitionInfo, kadm.TopicDetails, error) {
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	var names []string
	for name, td := range md.Topics {
		if td.Err != nil {
			if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				return nil, nil, fmt.Errorf("topic %s does not exist in the cluster", name)
			}
			return nil, nil, fmt.Errorf("metadata %s: %w", name, td.Err)
		}
		if td.IsInternal && len(topics) == 0 {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, md.Topics, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	var out []partitionInfo
	for _, name := range names {
		td := md.Topics[name]
		for p, pd := range td.Partitions {
			pi := partitionInfo{topic: name, id: td.ID, partition: p, leader: pd.Leader, replicas: len(pd.Replicas)}
			s, ok1 := starts.Lookup(name, p)
			e, ok2 := ends.Lookup(name, p)
			switch {
			case !ok1 || !ok2:
				pi.err = fmt.Errorf("%s/%d: no offsets listed", name, p)
			case s.Err != nil:
				pi.err = fmt.Errorf("%s/%d: list start offset: %w", name, p, s.Err)
			case e.Err != nil:
				pi.err = fmt.Errorf("%s/%d: list end offset: %w", name, p, e.Err)
			default:
				pi.logStart, pi.hwm = s.Offset, e.Offset
			}
			out = append(out, pi)
		}
	}
	sortPartitions(out)
	return out, md.Topics, nil
}

func sortPartitions(ps []partitionInfo) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].topic != ps[j].topic {
			return ps[i].topic < ps[j].topic
		}
		return ps[i].partition < ps[j].partition
	})
}

func (pi *partitionInfo) fetcher(cl *kgo.Client, adm *kadm.Client) *partitionFetcher {
	return &partitionFetcher{cl: cl, adm: adm, topic: pi.topic, id: pi.id, partition: pi.partition, leader: pi.leader}
}

// backfilledBatch turns a batch as a broker serves it into a Batch as
// Amber stores it (see FORMAT.md, "Backfilled batches"): FirstOffset
// zeroed and PartitionLeaderEpoch set to -1, as a producer sends it (the
// CRC covers neither), the offset in BaseOffset, and, since no
// acknowledgement was seen, the broker's append time (LogAppendTime
// batches) or the batch's MaxTimestamp as the ack time.
func backfilledBatch(topic string, partition int32, raw []byte, clientID string, now, born time.Time) (Batch, protocol.BatchHeader) {
	h, _ := protocol.ParseBatchHeader(raw) // parsed when fetched
	binary.BigEndian.PutUint64(raw[0:], 0)
	binary.BigEndian.PutUint32(raw[12:], 0xffffffff)
	b := Batch{Topic: topic, Partition: partition, BaseOffset: h.FirstOffset, LogAppendTime: -1, ClientID: clientID, Data: raw, AckTime: now}
	if h.MaxTimestamp >= 0 {
		b.AckTime = time.UnixMilli(h.MaxTimestamp).UTC()
	}
	if !born.IsZero() && !b.AckTime.After(born) {
		// A batch of a topic created again after born was appended
		// after born, whatever timestamps its producer set (a mirror
		// keeps the source's): it must not pass for the old topic's.
		b.AckTime = born.Add(time.Millisecond)
	}
	if h.Attributes&protocol.AttrLogAppendTime != 0 {
		b.LogAppendTime = h.MaxTimestamp
	}
	return b, h
}
