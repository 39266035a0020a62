package impact

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/protocol"
)

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

// batch is what the analysis needs of one archived batch: its offsets
// and ack time, as an index (or a journal batch's header) says them.
type batch struct {
	base, span, records int64
	ack                 time.Time
	// offsets are the records' offsets of a batch with gaps (records <
	// span), once read; nil until then, and for a batch without gaps.
	offsets []int64
}

func (b *batch) end() int64 { return b.base + b.span }

// partition is one partition's batches in offset order, each offset once.
type partition struct {
	tp
	batches []batch
}

// loadPartitions gathers the batches of topics from the indexes of a
// (and from j, if set), merging writers and counting each offset once as
// the archive's readers do. Of a topic deleted and created again it takes
// only the batches acknowledged in its lifetime of lives (the other
// topic's batches sit at the same offsets); a partition all of whose
// batches are left out is there, empty.
func loadPartitions(a *archive.Archive, j *archive.Journal, topics map[string]bool, lives map[string]lifetime) (map[tp]*partition, error) {
	all := map[tp][]batch{}
	for _, ix := range a.Indexes() {
		for bi := range ix.Blocks {
			blk := &ix.Blocks[bi]
			if len(blk.Batches) == 0 || !topics[blk.Topic] {
				continue // an events or losses block, or another topic
			}
			k := tp{blk.Topic, blk.Partition}
			all[k] = append(all[k], nil...)
			for _, m := range blk.Batches {
				if lives[blk.Topic].has(m.AckTime) {
					all[k] = append(all[k], batch{base: m.BaseOffset, span: m.Span, records: m.Records, ack: m.AckTime})
				}
			}
		}
	}
	if j != nil {
		err := j.Batches(func(b *archive.Batch) error {
			k := tp{b.Topic, b.Partition}
			if !topics[b.Topic] {
				return nil
			}
			all[k] = append(all[k], nil...)
			if !lives[b.Topic].has(b.AckTime) {
				return nil
			}
			h, err := protocol.ParseBatchHeader(b.Data)
			if err != nil {
				return fmt.Errorf("journal batch %s/%d@%d: %w", b.Topic, b.Partition, b.BaseOffset, err)
			}
			nb := batch{base: b.BaseOffset, span: h.Records(), records: int64(h.NumRecords), ack: b.AckTime}
			if nb.records != nb.span {
				if nb.offsets, err = recordOffsets(b.Data, &h, b.BaseOffset); err != nil {
					return fmt.Errorf("journal batch %s/%d@%d: %w", b.Topic, b.Partition, b.BaseOffset, err)
				}
			}
			all[k] = append(all[k], nb)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[tp]*partition, len(all))
	for k, bs := range all {
		sort.SliceStable(bs, func(i, j int) bool {
			if bs[i].base != bs[j].base {
				return bs[i].base < bs[j].base
			}
			return bs[i].ack.Before(bs[j].ack) // the first copy wins
		})
		p := &partition{tp: k}
		end := int64(-1 << 62)
		for _, b := range bs {
			if b.end() <= end {
				continue // a copy of what an earlier batch covers
			}
			end = b.end()
			p.batches = append(p.batches, b)
		}
		out[k] = p
	}
	return out, nil
}

// window returns the partition's window: from the first batch
// acknowledged at or after since to the end of the last acknowledged at
// or before until. ok is false when no batch was acknowledged inside.
//
// Offsets are the order consumers read in, so the window is one range
// even if ack times are not quite monotonic (two proxies, pipelined
// produce requests): a batch inside the range is in the window whatever
// its ack time.
func (p *partition) window(since, until time.Time) (w PartitionWindow, ok bool) {
	first, last := -1, -1
	for i := range p.batches {
		ack := p.batches[i].ack
		if first < 0 && !ack.Before(since) {
			first = i
		}
		if !ack.After(until) {
			last = i
		}
	}
	if first < 0 || last < first {
		return PartitionWindow{}, false
	}
	w = PartitionWindow{Topic: p.topic, Partition: p.partition, FromOffset: p.batches[first].base, ToOffset: p.batches[last].end(),
		FirstAckTime: p.batches[first].ack, LastAckTime: p.batches[first].ack}
	held := int64(0)
	for _, b := range p.batches[first : last+1] {
		w.Records += b.records
		held += b.span
		if b.ack.Before(w.FirstAckTime) {
			w.FirstAckTime = b.ack
		}
		if b.ack.After(w.LastAckTime) {
			w.LastAckTime = b.ack
		}
	}
	w.Unarchived = w.ToOffset - w.FromOffset - held
	return w, true
}

// counter counts archived records in offset ranges, reading record data
// only for a batch with gaps that a range ends inside.
type counter struct {
	ctx   context.Context
	a     *archive.Archive
	lives map[string]lifetime // as loadPartitions took them
}

// count returns how many archived records of p lie in [lo, hi).
func (c *counter) count(p *partition, lo, hi int64) (int64, error) {
	var n int64
	i := sort.Search(len(p.batches), func(i int) bool { return p.batches[i].end() > lo })
	for ; i < len(p.batches) && p.batches[i].base < hi; i++ {
		b := &p.batches[i]
		if b.base >= lo && b.end() <= hi {
			n += b.records
			continue
		}
		if b.records == b.span { // no gaps: one record per offset
			n += min(hi, b.end()) - max(lo, b.base)
			continue
		}
		if b.offsets == nil {
			offs, err := c.read(p, b.base)
			if err != nil {
				return 0, err
			}
			b.offsets = offs
		}
		for _, o := range b.offsets {
			if o >= lo && o < hi {
				n++
			}
		}
	}
	return n, nil
}

// read returns the offsets of the records of p's batch at base.
func (c *counter) read(p *partition, base int64) ([]int64, error) {
	var offs []int64
	err := c.a.ScanPartition(c.ctx, p.topic, p.partition, base, func(b *archive.Batch) error {
		if b.BaseOffset != base || !c.lives[p.topic].has(b.AckTime) {
			return nil // another batch, or the other topic's of that name
		}
		h, err := protocol.ParseBatchHeader(b.Data)
		if err != nil {
			return err
		}
		if offs, err = recordOffsets(b.Data, &h, base); err != nil {
			return err
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("read %s/%d batch at %d: %w", p.topic, p.partition, base, err)
	}
	if offs == nil {
		offs = []int64{} // not found (a copy another batch covers): count nothing twice
	}
	return offs, nil
}

// recordOffsets decodes a batch's records' offsets.
func recordOffsets(data []byte, h *protocol.BatchHeader, base int64) ([]int64, error) {
	recs, err := protocol.DecodeRecords(data, h, base, archive.Codec())
	if err != nil {
		return nil, err
	}
	offs := make([]int64, len(recs))
	for i, r := range recs {
		offs[i] = r.Offset
	}
	return offs, nil
}
