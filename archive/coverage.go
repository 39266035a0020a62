package archive

import (
	"errors"
	"sort"
	"time"

	"github.com/amber-kafka/amber/protocol"
)

// PartitionCoverage is what the archive holds of one partition: the offset
// range it covers and the holes inside it. It is the JSON `amber ls
// --json` prints, one object per partition.
type PartitionCoverage struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"` // exclusive
	Records     int64  `json:"records"`
	Batches     int64  `json:"batches"`
	Bytes       int64  `json:"bytes"`
	// Holes are [start, end) offset ranges inside [StartOffset,
	// EndOffset) that the archive does not hold.
	Holes [][2]int64 `json:"holes"`
	// KnownLoss are offset ranges the archive does not hold and never
	// will: the cluster had deleted or compacted them away before a
	// backfill could fetch them. They are not holes, and may lie before
	// StartOffset.
	KnownLoss    []LossRange `json:"known_loss"`
	FirstAckTime time.Time   `json:"first_ack_time"`
	LastAckTime  time.Time   `json:"last_ack_time"`
}

// coverageBuilder folds batches, given in (topic, partition, offset) order,
// into coverage. A batch wholly inside what is already covered (another
// writer's copy, or an upload repeated after a crash) counts once.
type coverageBuilder struct {
	out []PartitionCoverage
	cur *PartitionCoverage
}

func (c *coverageBuilder) add(topic string, partition int32, m BatchMeta, size int) {
	base, ack := m.BaseOffset, m.AckTime
	if c.cur == nil || c.cur.Topic != topic || c.cur.Partition != partition {
		c.out = append(c.out, PartitionCoverage{Topic: topic, Partition: partition, StartOffset: base, EndOffset: base, Holes: [][2]int64{}})
		c.cur = &c.out[len(c.out)-1]
		c.cur.FirstAckTime, c.cur.LastAckTime = ack, ack
	}
	p := c.cur
	end := base + m.Span
	if end <= p.EndOffset {
		return // already covered
	}
	if base > p.EndOffset {
		p.Holes = append(p.Holes, [2]int64{p.EndOffset, base})
	}
	p.EndOffset = end
	p.Records += m.Records
	p.Batches++
	p.Bytes += int64(size)
	if ack.Before(p.FirstAckTime) {
		p.FirstAckTime = ack
	}
	if ack.After(p.LastAckTime) {
		p.LastAckTime = ack
	}
}

func (c *coverageBuilder) result() []PartitionCoverage {
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Topic != c.out[j].Topic {
			return c.out[i].Topic < c.out[j].Topic
		}
		return c.out[i].Partition < c.out[j].Partition
	})
	return c.out
}

// Coverage reports, per partition, what the journal holds.
func (j *Journal) Coverage() ([]PartitionCoverage, error) {
	return CombinedCoverage(nil, j)
}

// CombinedCoverage reports what an archive and a journal not yet uploaded
// to it hold together (either may be nil), each batch counted once, with
// the known losses both record.
func CombinedCoverage(a *Archive, j *Journal) ([]PartitionCoverage, error) {
	return combinedCoverage(a, j, nil)
}

// combinedCoverage is CombinedCoverage of the topics as they are now: a
// topic in births (deleted and created again, births.go) counts only what
// was acknowledged, and losses recorded, after its birth.
func combinedCoverage(a *Archive, j *Journal, births map[string]time.Time) ([]PartitionCoverage, error) {
	return coverageWithout(a, j, func(topic string, at time.Time) bool {
		born, ok := births[topic]
		return ok && !at.After(born)
	})
}

// CoverageBetween is the coverage of topic as it was between two of its
// deletions (births.go): only batches acknowledged, and losses recorded,
// after after and not after before (a zero time leaves that side open).
// Restore reports what is missing of the topic it restores with it.
func (a *Archive) CoverageBetween(topic string, after, before time.Time) []PartitionCoverage {
	cov, _ := coverageWithout(a, nil, func(t string, at time.Time) bool { // no journal: no error
		return t != topic || !after.IsZero() && !at.After(after) || !before.IsZero() && at.After(before)
	})
	return cov
}

// coverageWithout is CombinedCoverage leaving out the batches and losses
// for which old(topic, ack or record time) is true.
func coverageWithout(a *Archive, j *Journal, old func(topic string, at time.Time) bool) ([]PartitionCoverage, error) {
	parts := map[tp][]BatchMeta{}
	losses := map[tp][]LossRange{}
	if a != nil {
		for k, refs := range a.partitions() {
			for _, r := range refs {
				if !old(k.topic, r.meta.AckTime) {
					parts[k] = append(parts[k], r.meta)
				}
			}
		}
		for _, ix := range a.indexes {
			for bi := range ix.Blocks {
				if blk := &ix.Blocks[bi]; blk.Kind == blockLosses && !old(blk.Topic, ix.Created) {
					k := tp{blk.Topic, blk.Partition}
					losses[k] = append(losses[k], blk.Losses...)
				}
			}
		}
	}
	if j != nil {
		err := j.Events(func(ev *Event) error {
			if k, l, ok := lossFromEvent(ev); ok && !old(k.topic, ev.Time) {
				losses[k] = append(losses[k], l)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		err = j.Batches(func(b *Batch) error {
			if old(b.Topic, b.AckTime) {
				return nil
			}
			h, err := protocol.ParseBatchHeader(b.Data)
			if err != nil {
				return err
			}
			k := tp{b.Topic, b.Partition}
			parts[k] = append(parts[k], BatchMeta{BaseOffset: b.BaseOffset, Span: h.Records(), Records: int64(h.NumRecords),
				AckTime: b.AckTime, MaxTimestamp: h.MaxTimestamp, entryLen: len(b.Data)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	keys := make([]tp, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	var cb coverageBuilder
	for _, k := range keys {
		ms := parts[k]
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].BaseOffset < ms[j].BaseOffset })
		for _, m := range ms {
			cb.add(k.topic, k.partition, m, m.entryLen)
		}
	}
	return applyLosses(cb.result(), losses), nil
}

// Batches calls fn with every journaled batch in (topic, partition,
// offset) order. The batch's Data is valid only during the call.
func (j *Journal) Batches(fn func(*Batch) error) error {
	var (
		b   Batch
		buf []byte
	)
	return j.batchKeys(func(key, v []byte) error {
		var err error
		if b.Topic, b.Partition, b.BaseOffset, err = parseBatchKey(key); err != nil {
			return err
		}
		if err := j.decodeStoredBatch(v, &b, &buf); err != nil {
			if errors.Is(err, errLogFileGone) {
				return nil // uploaded (and its file removed) since the iterator began
			}
			return err
		}
		return fn(&b)
	})
}

// Events calls fn with every journaled event in order.
func (j *Journal) Events(fn func(*Event) error) error {
	return j.eventsFrom([]byte{prefixEvent}, fn)
}
