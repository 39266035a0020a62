package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/protocol"
)

// OffsetRange maps source offsets [SourceStart, SourceEnd) to target
// offsets from TargetStart.
type OffsetRange struct {
	SourceStart int64 `json:"source_start"`
	SourceEnd   int64 `json:"source_end"`
	TargetStart int64 `json:"target_start"`
}

// producer is the restore's idempotent producer on the target.
type producer struct {
	id    int64
	epoch int16
}

// target knows where a target topic's partitions lead, refreshing on
// leadership errors.
type target struct {
	cl    *kgo.Client
	mu    sync.Mutex
	ids   map[string][16]byte
	leads map[string]map[int32]int32
}

func newTarget(cl *kgo.Client) *target {
	return &target{cl: cl, ids: map[string][16]byte{}, leads: map[string]map[int32]int32{}}
}

func (t *target) refresh(ctx context.Context, topic string) error {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, t.cl)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return fmt.Errorf("target topic %s: %w", topic, err)
		}
		t.ids[topic] = mt.TopicID
		m := map[int32]int32{}
		for _, p := range mt.Partitions {
			m[p.Partition] = p.Leader
		}
		t.leads[topic] = m
	}
	return nil
}

func (t *target) leader(ctx context.Context, topic string, p int32) (int32, [16]byte, error) {
	t.mu.Lock()
	l, ok := t.leads[topic][p]
	id := t.ids[topic]
	t.mu.Unlock()
	if ok && l >= 0 {
		return l, id, nil
	}
	if err := t.refresh(ctx, topic); err != nil {
		return 0, id, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok = t.leads[topic][p]
	if !ok || l < 0 {
		return 0, id, fmt.Errorf("target %s/%d has no leader", topic, p)
	}
	return l, t.ids[topic], nil
}

// partWriter writes one target partition, one batch per produce request
// (brokers accept exactly one v2 batch per partition in a request), one
// request at a time (idempotent sequences must arrive in order), retrying
// leadership and timeout errors with the same bytes and sequence, which
// the broker deduplicates. Partitions write in parallel.
type partWriter struct {
	o         *Options
	t         *target
	prod      producer
	topic     string
	partition int32
	seq       int32
	lim       *limiter

	buf     []byte
	pending []written

	// resume: offsets already written by an earlier run of this restore.
	resumeAt int64
	cum      int64 // target offsets accounted for (when the target started empty)
	last     []byte
	verified bool

	omap    []OffsetRange
	records int64
	bytes   int64
	batches int64
	reenc   int64
	dry     bool
}

type written struct {
	srcBase, span int64
	records       int64
}

// add takes one selected batch: rewritten for the target, then written.
func (w *partWriter) add(ctx context.Context, st *step) error {
	data, srcBase, span, n, reencoded, err := w.prepare(st)
	if err != nil || data == nil {
		return err
	}
	if w.resumeAt > 0 && !w.verified {
		switch {
		case w.cum+span <= w.resumeAt:
			w.mapRange(srcBase, span, w.cum)
			w.cum += span
			w.last = data
			w.countWritten(int64(len(data)), n, reencoded)
			if w.cum == w.resumeAt {
				return w.verifyResume(ctx)
			}
			return nil
		default:
			return fmt.Errorf("%w: %s/%d holds %d offsets that do not end on a batch boundary of this restore (give --force to append, or restore elsewhere)", ErrTargetNotEmpty, w.topic, w.partition, w.resumeAt)
		}
	}
	if w.dry {
		w.mapRange(srcBase, span, w.cum)
		w.cum += span
		w.countWritten(int64(len(data)), n, reencoded)
		return nil
	}
	protocol.SetProducer(data, int16(binary.BigEndian.Uint16(data[21:])), w.prod.id, w.prod.epoch, w.seq)
	w.seq = int32((int64(w.seq) + span) % (1 << 31))
	// Brokers take exactly one v2 batch per partition per produce
	// request, so each batch is its own request.
	w.buf = append(w.buf[:0], data...)
	w.pending = append(w.pending[:0], written{srcBase, span, n})
	if err := w.flush(ctx); err != nil {
		return err
	}
	w.countWritten(int64(len(data)), n, reencoded)
	return nil
}

func (w *partWriter) countWritten(b, n int64, reencoded bool) {
	w.bytes += b
	w.records += n
	w.batches++
	if reencoded {
		w.reenc++
	}
	w.o.Progress(b, n)
}

// prepare turns an archived batch into the batch to write: the producer's
// bytes with only the header's producer fields to change, or, when records
// must change, a re-encoded batch.
func (w *partWriter) prepare(st *step) (data []byte, srcBase, span, records int64, reencoded bool, err error) {
	b, h := &st.b, &st.h
	attrs := h.Attributes &^ (protocol.AttrTransactional | protocol.AttrControl | protocol.AttrLogAppendTime)
	if st.filter == nil && b.LogAppendTime < 0 && w.o.OffsetHeader == "" {
		data = append([]byte(nil), b.Data[:h.Size()]...)
		binary.BigEndian.PutUint16(data[21:], uint16(attrs))
		return data, b.BaseOffset, h.Records(), int64(h.NumRecords), false, nil
	}
	recs, err := protocol.DecodeRecords(b.Data, h, b.BaseOffset, archive.Codec())
	if err != nil {
		return nil, 0, 0, 0, false, fmt.Errorf("%s/%d@%d: %w", b.Topic, b.Partition, b.BaseOffset, err)
	}
	kept := recs[:0]
	for _, r := range recs {
		if st.filter != nil && !st.filter(r) {
			continue
		}
		if b.LogAppendTime >= 0 {
			r.Timestamp = b.LogAppendTime // the broker's time is the record's time
		}
		if w.o.OffsetHeader != "" {
			r.Headers = append(append([]kmsg.Header(nil), r.Headers...), kmsg.Header{Key: w.o.OffsetHeader, Value: binary.BigEndian.AppendUint64(nil, uint64(r.Offset))})
		}
		kept = append(kept, r)
	}
	if len(kept) == 0 {
		return nil, 0, 0, 0, false, nil
	}
	base := kept[0].Offset
	data, err = protocol.EncodeBatch(kept, base, attrs, -1, -1, -1, archive.Codec())
	if err != nil {
		return nil, 0, 0, 0, false, err
	}
	return data, base, kept[len(kept)-1].Offset - base + 1, int64(len(kept)), true, nil
}

func (w *partWriter) mapRange(src, span, tgt int64) {
	if n := len(w.omap); n > 0 {
		last := &w.omap[n-1]
		if last.SourceEnd == src && last.TargetStart+(last.SourceEnd-last.SourceStart) == tgt {
			last.SourceEnd += span
			return
		}
	}
	w.omap = append(w.omap, OffsetRange{SourceStart: src, SourceEnd: src + span, TargetStart: tgt})
}

// flush sends what is gathered as one produce request.
func (w *partWriter) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.lim.wait(ctx, len(w.buf)); err != nil {
		return err
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		base, err := w.produce(ctx)
		if err == nil {
			for _, p := range w.pending {
				w.mapRange(p.srcBase, p.span, base)
				base += p.span
			}
			w.buf, w.pending = w.buf[:0], w.pending[:0]
			return nil
		}
		if !retriable(err) || attempt >= 20 || ctx.Err() != nil {
			return fmt.Errorf("write %s/%d: %w", w.topic, w.partition, err)
		}
		w.t.refresh(ctx, w.topic)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// retriable reports whether sending the same batch again can succeed.
// Kafka marks CORRUPT_MESSAGE retriable (a network flip), but the same
// bytes fail the same way, so a restore stops and says so.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable && ke != kerr.CorruptMessage
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, ErrTargetNotEmpty)
}

func (w *partWriter) produce(ctx context.Context) (int64, error) {
	leader, id, err := w.t.leader(ctx, w.topic, w.partition)
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = w.topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = w.partition, w.buf
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := w.t.cl.Broker(int(leader)).RetriableRequest(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("produce response for %s/%d has an unexpected shape", w.topic, w.partition)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return 0, err
	}
	return p.BaseOffset, nil
}

// verifyResume checks that the target's last batch is the last batch this
// restore would have written there, record for record: then the earlier
// run's writes are this restore's prefix and it continues after them.
func (w *partWriter) verifyResume(ctx context.Context) error {
	got, err := w.fetchBatchAt(ctx, w.resumeAt-1)
	if err != nil {
		return err
	}
	if got == nil || !sameRecords(got, w.last) {
		return fmt.Errorf("%w: %s/%d holds %d records that are not this restore's (give --force to append after them, or restore into an empty topic)", ErrTargetNotEmpty, w.topic, w.partition, w.resumeAt)
	}
	w.verified = true
	w.o.Logger.Info("resuming a partition an earlier run restored in part")
	return nil
}

// sameRecords compares two batches ignoring what a rewrite changes: base
// offset, leader epoch, CRC, producer fields.
func sameRecords(a, b []byte) bool {
	ha, err1 := protocol.ParseBatchHeader(a)
	hb, err2 := protocol.ParseBatchHeader(b)
	return err1 == nil && err2 == nil && ha.NumRecords == hb.NumRecords && ha.LastOffsetDelta == hb.LastOffsetDelta &&
		ha.Codec() == hb.Codec() && bytes.Equal(a[protocol.BatchHeaderLen:ha.Size()], b[protocol.BatchHeaderLen:hb.Size()])
}

// fetchBatchAt returns the target batch holding offset off.
func (w *partWriter) fetchBatchAt(ctx context.Context, off int64) ([]byte, error) {
	leader, id, err := w.t.leader(ctx, w.topic, w.partition)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 10
	req.MaxBytes = 64 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = w.topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = w.partition, off, 32<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := w.t.cl.Broker(int(leader)).RetriableRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("fetch %s/%d: unexpected response", w.topic, w.partition)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch %s/%d@%d: %w", w.topic, w.partition, off, err)
	}
	var found []byte
	protocol.SplitBatches(p.RecordBatches, func(h protocol.BatchHeader, b []byte) error {
		if h.FirstOffset <= off && off < h.FirstOffset+h.Records() {
			found = append([]byte(nil), b...)
			return errFound
		}
		return nil
	})
	return found, nil
}

var errFound = errors.New("found")

// limiter paces writes to a byte rate shared by every partition.
type limiter struct {
	rate float64 // bytes per second; 0: unlimited
	mu   sync.Mutex
	next time.Time
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
