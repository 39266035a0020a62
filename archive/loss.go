package archive

import (
	"encoding/json"
	"sort"
)

// Known loss: offsets of a partition the archive does not hold and never
// will, because the cluster no longer had them when a backfill looked.
// They are recorded, durably and with a reason, so that a gap in the
// archive is either a hole (not archived yet: a backfill can fetch it) or
// a known loss (gone from the cluster before anyone archived it), never a
// silent hole.
//
// A loss is journaled as an event of kind KindKnownLoss (body
// KnownLossEvent); the uploader also summarises each segment's losses in
// its index (block kind 3, index format 2), so `amber ls` shows them
// without reading data.

// Known loss reasons (part of the format).
const (
	// LossDeleted: below the cluster's log start offset (retention, or
	// DeleteRecords) before any copy reached the archive.
	LossDeleted = "deleted"
	// LossCompacted: inside the partition's log, but the broker no longer
	// returns the offsets (log compaction removed the batches).
	LossCompacted = "compacted"
)

// KnownLossEvent is the body of a KindKnownLoss event: the offsets
// [Start, End) of a partition are gone from the cluster and not archived.
type KnownLossEvent struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"` // exclusive
	Reason    string `json:"reason"`
	// LogStartOffset and HighWatermark are the cluster's when the loss
	// was found.
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

// LossRange is one known loss of a partition, as `amber ls --json`
// prints it.
type LossRange struct {
	Start  int64  `json:"start"`
	End    int64  `json:"end"` // exclusive
	Reason string `json:"reason"`
}

// lossFromEvent decodes a KindKnownLoss event; ok is false for any other
// event or a body that does not parse.
func lossFromEvent(ev *Event) (tp, LossRange, bool) {
	if ev.Kind != KindKnownLoss {
		return tp{}, LossRange{}, false
	}
	var l KnownLossEvent
	if err := json.Unmarshal(ev.Body, &l); err != nil || l.End <= l.Start {
		return tp{}, LossRange{}, false
	}
	return tp{l.Topic, l.Partition}, LossRange{Start: l.Start, End: l.End, Reason: l.Reason}, true
}

// mergeLosses sorts ranges and merges those that overlap or touch with the
// same reason.
func mergeLosses(rs []LossRange) []LossRange {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	var out []LossRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].End && (r.Reason == out[n-1].Reason || r.Start < out[n-1].End) {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// span is a half-open offset interval [lo, hi).
type span struct{ lo, hi int64 }

// subtractSpans returns the parts of in not covered by any of cut (both
// sorted, non-overlapping).
func subtractSpans(in, cut []span) []span {
	var out []span
	j := 0
	for _, s := range in {
		lo := s.lo
		for j < len(cut) && cut[j].hi <= lo {
			j++
		}
		for k := j; k < len(cut) && cut[k].lo < s.hi; k++ {
			if cut[k].lo > lo {
				out = append(out, span{lo, cut[k].lo})
			}
			lo = max(lo, cut[k].hi)
		}
		if lo < s.hi {
			out = append(out, span{lo, s.hi})
		}
	}
	return out
}

// intersectSpans returns the parts of in that lie inside some span of
// with (both sorted, non-overlapping).
func intersectSpans(in, with []span) []span {
	return subtractSpans(in, subtractSpans(in, with))
}

// unionSpans sorts and merges overlapping or touching spans.
func unionSpans(in []span) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].lo < in[j].lo })
	var out []span
	for _, s := range in {
		if s.hi <= s.lo {
			continue
		}
		if n := len(out); n > 0 && s.lo <= out[n-1].hi {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// covered returns the offsets a partition's coverage holds: [start, end)
// minus its holes.
func (c *PartitionCoverage) covered() []span {
	if c.EndOffset <= c.StartOffset || c.Batches == 0 {
		return nil
	}
	holes := make([]span, len(c.Holes))
	for i, h := range c.Holes {
		holes[i] = span{h[0], h[1]}
	}
	return subtractSpans([]span{{c.StartOffset, c.EndOffset}}, holes)
}

// applyLosses folds known losses into coverage: a loss shows only where no
// batch is archived, and a hole it explains is no longer a hole. A
// partition known only by its losses gets an entry of its own (no
// batches; start and end at the end of its last loss).
func applyLosses(cov []PartitionCoverage, losses map[tp][]LossRange) []PartitionCoverage {
	idx := make(map[tp]int, len(cov))
	for i := range cov {
		cov[i].KnownLoss = []LossRange{}
		idx[tp{cov[i].Topic, cov[i].Partition}] = i
	}
	for k, ls := range losses {
		i, ok := idx[k]
		if !ok {
			cov = append(cov, PartitionCoverage{Topic: k.topic, Partition: k.partition, Holes: [][2]int64{}})
			i = len(cov) - 1
			idx[k] = i
		}
		c := &cov[i]
		have := c.covered()
		var lossSpans []span
		for _, l := range mergeLosses(ls) {
			for _, s := range subtractSpans([]span{{l.Start, l.End}}, have) {
				c.KnownLoss = append(c.KnownLoss, LossRange{Start: s.lo, End: s.hi, Reason: l.Reason})
				lossSpans = append(lossSpans, s)
			}
		}
		lossSpans = unionSpans(lossSpans)
		var holes [][2]int64
		for _, h := range c.Holes {
			for _, s := range subtractSpans([]span{{h[0], h[1]}}, lossSpans) {
				holes = append(holes, [2]int64{s.lo, s.hi})
			}
		}
		c.Holes = append([][2]int64{}, holes...)
		if c.Batches == 0 && len(c.KnownLoss) > 0 {
			end := c.KnownLoss[len(c.KnownLoss)-1].End
			c.StartOffset, c.EndOffset = end, end
		}
	}
	sort.SliceStable(cov, func(i, j int) bool {
		if cov[i].Topic != cov[j].Topic {
			return cov[i].Topic < cov[j].Topic
		}
		return cov[i].Partition < cov[j].Partition
	})
	return cov
}
