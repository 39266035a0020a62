package restore

import (
	"encoding/binary"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/protocol"
)

// step is one archived batch on its way to the target: written whole,
// written in part (filter), or skipped with a reason.
type step struct {
	b       archive.Batch
	h       protocol.BatchHeader
	filter  func(protocol.Record) bool // nil: the whole batch
	skip    string                     // non-empty: not restored, and why
	pending bool                       // a transaction whose outcome is not known yet
}

// Skip reasons, as counted in the report.
const (
	skipBeforeSince   = "before_since"
	skipAfterUntil    = "after_until"
	skipAborted       = "aborted"
	skipCommitLate    = "committed_after_until"
	skipUnknownTxn    = "unknown_transaction_outcome"
	skipControl       = "transaction_marker"
	skipOutsideOffset = "after_until_offset"
)

// selector decides, in offset order, which archived batches of one
// partition are restored. Transactional batches wait in a queue until
// their outcome is known (an EndTxn event, or a transaction marker later
// in the partition), so that output keeps the source order.
type selector struct {
	o         *Options
	hist      *history
	partition int32
	queue     []*step
	waiting   map[int64]int // pending transactional batches per producer id
	emit      func(*step) error
	skipped   map[string]int64
}

func newSelector(o *Options, hist *history, partition int32, emit func(*step) error) *selector {
	return &selector{o: o, hist: hist, partition: partition, waiting: map[int64]int{}, emit: emit, skipped: map[string]int64{}}
}

// push takes the next archived batch (valid only during the call).
func (s *selector) push(b *archive.Batch) error {
	h, err := protocol.ParseBatchHeader(b.Data)
	if err != nil {
		return err
	}
	if h.Control() {
		s.skipped[skipControl] += h.Records()
		return s.marker(b, &h)
	}
	st := &step{b: *b, h: h}
	s.cut(st)
	if st.skip == "" && h.Transactional() && !s.o.IncludeAborted {
		if end, ok := s.hist.txnOutcome(h.ProducerID, h.ProducerEpoch, b.AckTime); ok {
			s.decide(st, end)
		} else {
			st.pending = true
			s.waiting[h.ProducerID]++
		}
	}
	if len(s.queue) == 0 && !st.pending {
		return s.out(st)
	}
	st.b.Data = append([]byte(nil), b.Data...) // held past the call
	s.queue = append(s.queue, st)
	return s.drain()
}

// cut applies the time and offset cuts to one batch.
func (s *selector) cut(st *step) {
	o, b, h := s.o, &st.b, &st.h
	if o.UntilOffset >= 0 && (o.Partition < 0 || o.Partition == s.partition) {
		switch end := o.UntilOffset; {
		case b.BaseOffset >= end:
			st.skip = skipOutsideOffset
			return
		case b.BaseOffset+h.Records() > end:
			st.filter = func(r protocol.Record) bool { return r.Offset < end }
		}
	}
	if !o.ByRecordTime {
		switch {
		case !o.Until.IsZero() && b.AckTime.After(o.Until):
			st.skip = skipAfterUntil
		case !o.Since.IsZero() && b.AckTime.Before(o.Since):
			st.skip = skipBeforeSince
		}
		return
	}
	first, last := h.FirstTimestamp, h.MaxTimestamp
	if b.LogAppendTime >= 0 {
		first, last = b.LogAppendTime, b.LogAppendTime
	}
	until, since := int64(1<<62), int64(-1<<62)
	if !o.Until.IsZero() {
		until = o.Until.UnixMilli()
	}
	if !o.Since.IsZero() {
		since = o.Since.UnixMilli()
	}
	switch {
	case first > until && last > until:
		st.skip = skipAfterUntil
	case last < since:
		st.skip = skipBeforeSince
	case last > until || first < since:
		prev := st.filter
		st.filter = func(r protocol.Record) bool {
			ts := r.Timestamp
			if b.LogAppendTime >= 0 {
				ts = b.LogAppendTime
			}
			return ts >= since && ts <= until && (prev == nil || prev(r))
		}
	}
}

// decide resolves a transactional batch by its transaction's outcome.
func (s *selector) decide(st *step, end txnEnd) {
	switch {
	case !end.commit:
		st.skip = skipAborted
	case !s.o.Until.IsZero() && end.at.After(s.o.Until):
		st.skip = skipCommitLate // not committed at the cut
	}
}

// marker resolves the pending batches of the producer a transaction
// marker belongs to.
func (s *selector) marker(b *archive.Batch, h *protocol.BatchHeader) error {
	if s.waiting[h.ProducerID] == 0 {
		return nil
	}
	// A control record's key is version int16, type int16: 0 abort, 1 commit.
	recs, err := protocol.DecodeRecords(b.Data, h, b.BaseOffset, archive.Codec())
	if err != nil || len(recs) == 0 || len(recs[0].Key) < 4 {
		return nil // unreadable marker: the batches stay pending
	}
	end := txnEnd{at: b.AckTime, commit: binary.BigEndian.Uint16(recs[0].Key[2:]) == 1}
	for _, st := range s.queue {
		if st.pending && st.h.ProducerID == h.ProducerID {
			st.pending = false
			s.decide(st, end)
		}
	}
	s.waiting[h.ProducerID] = 0
	return s.drain()
}

// drain emits resolved batches from the head of the queue.
func (s *selector) drain() error {
	for len(s.queue) > 0 && !s.queue[0].pending {
		st := s.queue[0]
		s.queue = s.queue[1:]
		if err := s.out(st); err != nil {
			return err
		}
	}
	return nil
}

// finish resolves what is still pending as of unknown outcome.
func (s *selector) finish() error {
	for _, st := range s.queue {
		if st.pending {
			st.pending = false
			st.skip = skipUnknownTxn
		}
	}
	return s.drain()
}

func (s *selector) out(st *step) error {
	if st.skip != "" {
		s.skipped[st.skip] += int64(st.h.NumRecords)
		return nil
	}
	return s.emit(st)
}
