package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/protocol"
)

// Durability says when a produce response may reach the client.
type Durability int

const (
	// Sync holds each produce response until the batches it acknowledged
	// are fsynced in the journal (bounded by TeeOptions.SyncTimeout).
	Sync Durability = iota
	// Async lets the response go at once; the journal follows.
	Async
)

func (d Durability) String() string {
	if d == Async {
		return "async"
	}
	return "sync"
}

// ParseDurability parses "sync" or "async".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "sync":
		return Sync, nil
	case "async":
		return Async, nil
	}
	return Sync, fmt.Errorf("durability %q: want sync or async", s)
}

// DefaultSyncTimeout bounds how long a produce response waits for the
// journal in Sync mode before it goes to the client regardless.
const DefaultSyncTimeout = 5 * time.Second

// TeeOptions configures a Tee.
type TeeOptions struct {
	// Durability: Sync (the default) or Async.
	Durability Durability
	// SyncTimeout bounds a Sync wait. Past it the response is sent, the
	// batch may or may not be journaled, and a hole marks it if not.
	// Default DefaultSyncTimeout.
	SyncTimeout time.Duration
	// Logger, default nop.
	Logger *zap.Logger
}

// TeeStats are a tee's cumulative counters.
type TeeStats struct {
	Batches         int64 // batches handed to the journal
	AcksZeroBatches int64 // acks=0 batches: no offsets, so not journaled
	FailedBatches   int64 // batches in partitions the broker refused
	Dropped         int64 // batches the journal refused, or failed to commit while a Sync response waited
	SyncTimeouts    int64 // Sync waits that gave up
	UnknownTopicIDs int64 // Produce v13 batches whose topic id was never seen in Metadata
	BadBatches      int64 // records fields that did not parse as v2 batches
	Events          int64 // events handed to the journal
}

// Tee turns the exchanges the proxy shows it into journal entries. It
// implements the proxy's Tee interface.
type Tee struct {
	j    *Journal
	opts TeeOptions
	log  *zap.Logger

	topics struct {
		sync.RWMutex
		byID map[[16]byte]string // from Metadata and CreateTopics responses: every id seen
		// current is each topic's id as last seen; a Metadata response
		// naming a topic with an id never seen before means it was
		// deleted and created again around the proxy (learnTopics).
		current map[string][16]byte
		gone    map[[16]byte]bool // ids deleted through the proxy: a stale broker may still name them
		// changed is what current gained or lost since the journal was
		// last told (zero id: deleted). The journal keeps current across
		// restarts (Journal.TopicIDs), so a topic created again while no
		// proxy ran is noticed too.
		changed map[string][16]byte
	}
	eventMu     sync.Mutex
	lastDropLog atomic.Int64

	stats struct {
		batches, acks0, failed, dropped, timeouts, unknownIDs, bad, events atomic.Int64
	}
}

// NewTee returns a tee writing into j.
func NewTee(j *Journal, opts TeeOptions) *Tee {
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	t := &Tee{j: j, opts: opts, log: opts.Logger.With(zap.String("component", "tee"))}
	t.topics.byID = make(map[[16]byte]string)
	t.topics.current = make(map[string][16]byte)
	t.topics.gone = make(map[[16]byte]bool)
	t.topics.changed = make(map[string][16]byte)
	if j != nil {
		for name, id := range j.TopicIDs() {
			t.topics.current[name] = id
			t.topics.byID[id] = name
		}
	}
	return t
}

// setCurrent makes id the current id of topic name (zero: none). The
// caller holds t.topics.
func (t *Tee) setCurrent(name string, id [16]byte) {
	old, ok := t.topics.current[name]
	switch {
	case id == [16]byte{}:
		if !ok {
			return
		}
		delete(t.topics.current, name)
	case ok && old == id:
		return
	default:
		t.topics.current[name] = id
	}
	t.topics.changed[name] = id
}

// takeIDChanges returns the changes of current since the last call as the
// event that has the journal keep them, if there are any.
func (t *Tee) takeIDChanges(at time.Time) (Event, bool) {
	t.topics.Lock()
	defer t.topics.Unlock()
	if len(t.topics.changed) == 0 {
		return Event{}, false
	}
	body := make(map[string]string, len(t.topics.changed))
	for name, id := range t.topics.changed {
		body[name] = ""
		if id != ([16]byte{}) {
			body[name] = hex.EncodeToString(id[:])
		}
	}
	clear(t.topics.changed)
	return Event{Time: at, Kind: kindTopicIDs, Body: mustJSON(body)}, true
}

// Keys lists the API keys the tee observes.
func (t *Tee) Keys() []int16 {
	return []int16{
		int16(kmsg.Produce), int16(kmsg.Metadata), int16(kmsg.EndTxn),
		int16(kmsg.OffsetCommit), int16(kmsg.TxnOffsetCommit),
		int16(kmsg.CreateTopics), int16(kmsg.DeleteTopics), int16(kmsg.CreatePartitions),
		int16(kmsg.AlterConfigs), int16(kmsg.IncrementalAlterConfigs),
		int16(kmsg.DeleteRecords), int16(kmsg.DeleteGroups),
	}
}

// Stats returns the tee's counters.
func (t *Tee) Stats() TeeStats {
	return TeeStats{
		Batches: t.stats.batches.Load(), AcksZeroBatches: t.stats.acks0.Load(),
		FailedBatches: t.stats.failed.Load(), Dropped: t.stats.dropped.Load(),
		SyncTimeouts: t.stats.timeouts.Load(), UnknownTopicIDs: t.stats.unknownIDs.Load(),
		BadBatches: t.stats.bad.Load(), Events: t.stats.events.Load(),
	}
}

// Prepare asks the proxy to resolve, before req is forwarded, the topic
// ids req uses that the tee has never seen in a Metadata response (a
// client that refreshed its metadata before this proxy started sends
// Produce v13, OffsetCommit v10 and TxnOffsetCommit v6 by id only).
func (t *Tee) Prepare(req kmsg.Request) []kmsg.Request {
	var ids [][16]byte
	need := func(name string, id [16]byte) {
		if name == "" && id != ([16]byte{}) {
			if _, ok := t.topicName("", id); !ok {
				ids = append(ids, id)
			}
		}
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		for _, tp := range r.Topics {
			need(tp.Topic, tp.TopicID)
		}
	case *kmsg.OffsetCommitRequest:
		for _, tp := range r.Topics {
			need(tp.Topic, tp.TopicID)
		}
	case *kmsg.TxnOffsetCommitRequest:
		for _, tp := range r.Topics {
			need(tp.Topic, tp.TopicID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12) // topics by id; every broker with Produce v13 has it
	for _, id := range ids {
		mt := kmsg.NewMetadataRequestTopic()
		mt.TopicID = id
		meta.Topics = append(meta.Topics, mt)
	}
	return []kmsg.Request{meta}
}

// Observe records what x changed. See the proxy's Tee interface.
func (t *Tee) Observe(x *protocol.Exchange) func() {
	switch req := x.Request.(type) {
	case *kmsg.ProduceRequest:
		if x.Response == nil {
			t.countAcksZero(req)
			return nil
		}
		return t.produce(x, req, x.Response.(*kmsg.ProduceResponse))
	}
	// One at a time from here to the append, so that a change of topic
	// ids goes to the journal in the same append as the deletion event
	// it implies (takeIDChanges).
	t.eventMu.Lock()
	defer t.eventMu.Unlock()
	var events []Event
	if resp, ok := x.Response.(*kmsg.MetadataResponse); ok {
		events = t.learnTopics(x, resp)
	} else {
		events = t.events(x)
	}
	n := int64(len(events))
	if ev, ok := t.takeIDChanges(x.Acked); ok {
		events = append(events, ev)
	}
	if len(events) > 0 {
		t.stats.events.Add(n)
		if err := t.j.AppendNoWait(nil, events); err != nil {
			t.dropped(n, err)
		}
	}
	return nil
}

func (t *Tee) countAcksZero(req *kmsg.ProduceRequest) {
	for _, tp := range req.Topics {
		for _, p := range tp.Partitions {
			protocol.SplitBatches(p.Records, func(protocol.BatchHeader, []byte) error {
				t.stats.acks0.Add(1)
				return nil
			})
		}
	}
}

// learnTopics keeps the topic ids a Metadata response names. A topic
// named with an id never seen before, where another id was current, was
// deleted and created again without the proxy seeing it (straight on the
// brokers, or through another path): it returns a deletion event for the
// old id, observed now, so that readers tell the two topics apart. A
// stale broker naming an id seen before changes nothing.
func (t *Tee) learnTopics(x *protocol.Exchange, resp *kmsg.MetadataResponse) []Event {
	t.topics.Lock()
	defer t.topics.Unlock()
	var events []Event
	for _, tp := range resp.Topics {
		if tp.Topic == nil || tp.TopicID == ([16]byte{}) {
			continue
		}
		name, id := *tp.Topic, tp.TopicID
		if t.topics.gone[id] {
			continue
		}
		_, known := t.topics.byID[id]
		if old, ok := t.topics.current[name]; ok && old != id && !known {
			events = append(events, Event{Time: x.Acked, Kind: KindDeleteTopics, ClientID: x.ClientID,
				Body: mustJSON(TopicDeletedEvent{Topic: name, TopicID: hex.EncodeToString(old[:]), Observed: true})})
		}
		t.topics.byID[id] = name
		if !known || t.topics.current[name] == ([16]byte{}) {
			t.setCurrent(name, id)
		}
	}
	return events
}

// topicName resolves a Produce/commit topic: by name, or by id (v13+).
func (t *Tee) topicName(name string, id [16]byte) (string, bool) {
	if name != "" {
		return name, true
	}
	t.topics.RLock()
	defer t.topics.RUnlock()
	n, ok := t.topics.byID[id]
	return n, ok
}

type partKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// produce pairs each partition of the response with its batches in the
// request and journals those the broker accepted, at the offsets it
// assigned.
func (t *Tee) produce(x *protocol.Exchange, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) func() {
	records := make(map[partKey][]byte, len(req.Topics))
	for _, tp := range req.Topics {
		for _, p := range tp.Partitions {
			records[partKey{tp.Topic, tp.TopicID, p.Partition}] = p.Records
		}
	}
	var (
		batches []Batch
		size    int
	)
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			recs := records[partKey{tp.Topic, tp.TopicID, p.Partition}]
			size += len(recs)
			if p.ErrorCode != 0 || p.BaseOffset < 0 {
				protocol.SplitBatches(recs, func(protocol.BatchHeader, []byte) error {
					t.stats.failed.Add(1)
					return nil
				})
				continue
			}
			name, ok := t.topicName(tp.Topic, tp.TopicID)
			if !ok {
				t.stats.unknownIDs.Add(1)
				continue
			}
			offset := p.BaseOffset
			err := protocol.SplitBatches(recs, func(h protocol.BatchHeader, b []byte) error {
				batches = append(batches, Batch{
					Topic: name, Partition: p.Partition, BaseOffset: offset,
					AckTime: x.Acked, LogAppendTime: p.LogAppendTime, ClientID: x.ClientID, Data: b,
				})
				offset += h.Records()
				return nil
			})
			if err != nil {
				t.stats.bad.Add(1)
				t.log.Warn("produce records not journaled: not v2 record batches", zap.String("topic", name), zap.Int32("partition", p.Partition), zap.Error(err))
			}
		}
	}
	if len(batches) == 0 {
		return nil
	}
	// The request aliases the connection's buffer, which the proxy reuses
	// once Observe returns. Keep the buffer until the journal has written
	// the batches if the proxy lends it; else copy every batch into one
	// allocation (flat out, the copy, its zeroing and its garbage were a
	// quarter of what the tee added in async mode: 0.23 of 1.0 CPU s/GB,
	// docs/BENCHMARKS-ARCHIVE.md).
	var release func()
	if x.Retain != nil {
		release = x.Retain()
	} else {
		buf := make([]byte, 0, size)
		for i := range batches {
			start := len(buf)
			buf = append(buf, batches[i].Data...)
			batches[i].Data = buf[start:len(buf):len(buf)]
		}
	}
	refused := func(err error) {
		if release != nil {
			release()
		}
		t.dropped(int64(len(batches)), err)
	}
	t.stats.batches.Add(int64(len(batches)))
	if t.opts.Durability == Async {
		// A failed commit is counted and logged by the journal.
		if err := t.j.AppendNoWaitLent(batches, nil, release); err != nil {
			refused(err)
		}
		return nil
	}
	done, err := t.j.AppendLent(batches, nil, release)
	if err != nil {
		refused(err)
		return nil
	}
	return func() {
		timer := time.NewTimer(t.opts.SyncTimeout)
		defer timer.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.dropped(int64(len(batches)), err)
			}
		case <-timer.C:
			t.stats.timeouts.Add(1)
			t.dropLog(fmt.Errorf("journal did not confirm within %s; the response goes to the client anyway", t.opts.SyncTimeout))
		}
	}
}

func (t *Tee) dropped(n int64, err error) {
	t.stats.dropped.Add(n)
	t.dropLog(err)
}

// dropLog logs a journaling failure at most every ten seconds: a failed
// disk would otherwise log once per produce request.
func (t *Tee) dropLog(err error) {
	now := time.Now().UnixNano()
	last := t.lastDropLog.Load()
	if now-last < int64(10*time.Second) || !t.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	t.log.Error("produced batches not journaled; they will show as holes until backfilled", zap.Error(err),
		zap.Int64("dropped_total", t.stats.dropped.Load()), zap.Bool("journal_failed", errors.Is(err, ErrFailed)))
}
