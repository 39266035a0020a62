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
// leadership errors, and holds a sink per leader broker. ctx bounds every
// produce request its sinks send.
type target struct {
	ctx   context.Context
	cl    *kgo.Client
	mu    sync.Mutex // guards ids, leads, sinks
	ids   map[string][16]byte
	leads map[string]map[int32]int32
	sinks map[int32]*sink
}

func newTarget(ctx context.Context, cl *kgo.Client) *target {
	return &target{ctx: ctx, cl: cl, ids: map[string][16]byte{}, leads: map[string]map[int32]int32{}, sinks: map[int32]*sink{}}
}

// sink returns the sink of a broker.
func (t *target) sink(broker int32) *sink {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sinks[broker]
	if s == nil {
		s = &sink{t: t, broker: broker}
		t.sinks[broker] = s
	}
	return s
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

// partWriter writes one target partition. Its batches queue, in order, in
// the sink of the partition's leader, which sends them one per produce
// request (brokers accept exactly one v2 batch per partition in a
// request), each after the previous one is acknowledged, so that the
// idempotent sequences reach the broker in order. Up to partitionWindow
// batches are prepared ahead, so a request always finds the next batch of
// every partition its broker leads. A batch that fails with a retriable
// error (leadership, timeout, a lost connection) is sent again with the
// same bytes and sequence, which the broker deduplicates, and the batches
// after it with it. Partitions write in parallel.
type partWriter struct {
	o         *Options
	t         *target
	prod      producer
	topic     string
	partition int32
	seq       int32
	lim       *limiter

	// window holds the batches handed to a sink and not yet
	// acknowledged, in sequence order.
	window []*send
	// gen counts restarts: after a failure every batch of the window is
	// sent again under the next gen, and a sink refuses the failed gen's
	// stragglers.
	gen int
	// stuck: a batch of the window could not be handed to a sink (no
	// leader known), so none after it may be until the restart.
	stuck    bool
	attempts int
	backoff  time.Duration
	// free holds the buffers of acknowledged batches, for the next ones.
	free [][]byte

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

// partitionWindow is how many batches a partition has prepared and handed
// to its sink at most: one in flight, the others next.
const partitionWindow = 4

type written struct {
	srcBase, span int64
	records       int64
	reencoded     bool
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
	for len(w.window) >= partitionWindow {
		if err := w.settle(ctx); err != nil {
			return err
		}
	}
	if err := w.lim.wait(ctx, len(data)); err != nil {
		return err
	}
	sd := &send{data: data, wr: written{srcBase, span, n, reencoded}}
	w.window = append(w.window, sd)
	w.submit(ctx, sd)
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
		// The one copy a replayed batch needs: the archive lends its
		// bytes only for the call, and the header changes.
		data = append(w.buffer(h.Size()), b.Data[:h.Size()]...)
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

// buffer returns an empty buffer for n bytes, reusing an acknowledged
// batch's if one is large enough.
func (w *partWriter) buffer(n int) []byte {
	for i, b := range w.free {
		if cap(b) >= n {
			w.free[i] = w.free[len(w.free)-1]
			w.free = w.free[:len(w.free)-1]
			return b[:0]
		}
	}
	return make([]byte, 0, n)
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

// submit hands sd to the sink of the partition's leader, or fails it if
// the leader is not known (or an earlier batch could not be handed over).
func (w *partWriter) submit(ctx context.Context, sd *send) {
	sd.done, sd.err, sd.gen = make(chan struct{}), nil, w.gen
	if w.stuck {
		sd.err = errNotSent
		close(sd.done)
		return
	}
	leader, id, err := w.t.leader(ctx, w.topic, w.partition)
	if err != nil {
		w.stuck = true
		sd.err = err
		close(sd.done)
		return
	}
	sd.topic, sd.id, sd.partition = w.topic, id, w.partition
	w.t.sink(leader).submit(sd)
}

// settle waits for the oldest batch of the window. Acknowledged, it is
// mapped and counted. Failed retriably, the whole window is sent again
// once every batch of it is back (none after a failure is sent), after a
// metadata refresh and a backoff.
func (w *partWriter) settle(ctx context.Context) error {
	sd := w.window[0]
	select {
	case <-sd.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if sd.err == nil {
		w.acked()
		return nil
	}
	for _, later := range w.window[1:] {
		select {
		case <-later.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := sd.err
	if !retriable(err) || w.attempts >= 20 || ctx.Err() != nil {
		return fmt.Errorf("write %s/%d: %w", w.topic, w.partition, err)
	}
	w.attempts++
	w.backoff = min(max(2*w.backoff, 100*time.Millisecond), 5*time.Second)
	if rerr := w.t.refresh(ctx, w.topic); errors.Is(rerr, kerr.UnknownTopicOrPartition) && (w.batches > 0 || w.resumeAt > 0) {
		// The topic held this restore's writes and is gone now: it
		// was deleted under the restore. Retrying cannot bring it back
		// (20 attempts took over a minute to say so).
		return fmt.Errorf("write %s/%d: %w (the target topic was deleted during the restore; run it again to start over)", w.topic, w.partition, rerr)
	}
	select {
	case <-time.After(w.backoff):
	case <-ctx.Done():
		return ctx.Err()
	}
	w.gen++
	w.stuck = false
	for _, sd := range w.window {
		w.submit(ctx, sd)
	}
	return nil
}

// acked maps and counts the oldest batch of the window, acknowledged.
func (w *partWriter) acked() {
	sd := w.window[0]
	w.window = w.window[1:]
	w.attempts, w.backoff = 0, 0
	w.mapRange(sd.wr.srcBase, sd.wr.span, sd.base)
	w.countWritten(int64(len(sd.data)), sd.wr.records, sd.wr.reencoded)
	if len(w.free) < partitionWindow {
		w.free = append(w.free, sd.data) // the request is done with it
	}
}

// settleAcked maps and counts, without waiting, the batches at the head
// of the window already acknowledged: after a failure, the report then
// says all that reached the target.
func (w *partWriter) settleAcked() {
	for len(w.window) > 0 {
		select {
		case <-w.window[0].done:
		default:
			return
		}
		if w.window[0].err != nil {
			return
		}
		w.acked()
	}
}

// flush waits until every batch handed to a sink is acknowledged.
func (w *partWriter) flush(ctx context.Context) error {
	for len(w.window) > 0 {
		if err := w.settle(ctx); err != nil {
			return err
		}
	}
	return nil
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

// errNotSent fails the batches queued after one that failed: they are
// sent again with it.
var errNotSent = errors.New("not sent: an earlier batch of the partition failed")

// send is one batch on its way to its partition's leader. The sink sets
// base or err, then closes done.
type send struct {
	data []byte
	wr   written

	topic     string
	id        [16]byte
	partition int32
	gen       int

	done chan struct{}
	base int64
	err  error
}

// sinkRequestBytes bounds the batch bytes of one produce request (brokers
// refuse requests over socket.request.max.bytes, 100 MiB by default); a
// batch larger than this still goes, alone.
const sinkRequestBytes = 16 << 20

// sink sends the batches bound for one broker. Each produce request
// carries the next batch of every partition with one waiting, and the
// next request goes once the previous one is answered: a partition's
// batches reach the broker one at a time, in order, whatever happens to
// the connection. (franz-go pipelines requests on a connection, but
// Broker.Request does not promise that two concurrent calls are written
// in the order they were made, so a partition never has two in flight.)
// The sink's goroutine exists only while batches wait.
type sink struct {
	t      *target
	broker int32
	mu     struct {
		sync.Mutex
		queues  map[tpKey]*sinkQueue
		running bool // the goroutine sending requests exists
	}
}

type tpKey struct {
	topic     string
	partition int32
}

// sinkQueue is one partition's batches waiting in a sink.
type sinkQueue struct {
	sends []*send
	// failedGen: the last gen of the partition that failed here; its
	// later batches are refused, not sent.
	failedGen int
}

// submit queues sd behind its partition's earlier batches.
func (s *sink) submit(sd *send) {
	k := tpKey{sd.topic, sd.partition}
	s.mu.Lock()
	if s.mu.queues == nil {
		s.mu.queues = map[tpKey]*sinkQueue{}
	}
	q := s.mu.queues[k]
	if q == nil {
		q = &sinkQueue{failedGen: -1}
		s.mu.queues[k] = q
	}
	if sd.gen <= q.failedGen {
		s.mu.Unlock()
		sd.err = errNotSent
		close(sd.done)
		return
	}
	q.sends = append(q.sends, sd)
	start := !s.mu.running
	s.mu.running = true
	s.mu.Unlock()
	if start {
		go s.run()
	}
}

// run sends requests until no batch waits.
func (s *sink) run() {
	var batch []*send
	for {
		batch = batch[:0]
		size := 0
		s.mu.Lock()
		for _, q := range s.mu.queues {
			if len(q.sends) > 0 && (len(batch) == 0 || size+len(q.sends[0].data) <= sinkRequestBytes) {
				batch = append(batch, q.sends[0])
				size += len(q.sends[0].data)
			}
		}
		if len(batch) == 0 {
			s.mu.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.produce(batch)
		s.mu.Lock()
		for _, sd := range batch {
			k := tpKey{sd.topic, sd.partition}
			q := s.mu.queues[k]
			q.sends = q.sends[1:]
			if sd.err != nil {
				q.failedGen = sd.gen
				for _, later := range q.sends {
					later.err = errNotSent
					close(later.done)
				}
				q.sends = nil
			}
			close(sd.done)
		}
		s.mu.Unlock()
	}
}

// produce sends batch (one batch per partition) as one produce request and
// sets each one's outcome.
func (s *sink) produce(batch []*send) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	for _, sd := range batch {
		var rt *kmsg.ProduceRequestTopic
		for i := range req.Topics {
			if req.Topics[i].Topic == sd.topic {
				rt = &req.Topics[i]
			}
		}
		if rt == nil {
			t := kmsg.NewProduceRequestTopic()
			t.Topic, t.TopicID = sd.topic, sd.id
			req.Topics = append(req.Topics, t)
			rt = &req.Topics[len(req.Topics)-1]
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = sd.partition, sd.data
		rt.Partitions = append(rt.Partitions, rp)
	}
	kresp, err := s.t.cl.Broker(int(s.broker)).RetriableRequest(s.t.ctx, req)
	for _, sd := range batch {
		if err != nil {
			sd.err = err
		} else {
			sd.base, sd.err = answer(kresp.(*kmsg.ProduceResponse), sd)
		}
	}
}

// answer finds a batch's outcome in a produce response: topics are named
// by name or, from Produce v13, by id.
func answer(resp *kmsg.ProduceResponse, sd *send) (int64, error) {
	for _, rt := range resp.Topics {
		if rt.Topic != sd.topic && (rt.TopicID == [16]byte{} || rt.TopicID != sd.id) {
			continue
		}
		for _, p := range rt.Partitions {
			if p.Partition != sd.partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, err
			}
			return p.BaseOffset, nil
		}
	}
	return 0, fmt.Errorf("the produce response has no answer for %s/%d", sd.topic, sd.partition)
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
