package restore

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// history is what the archived events say, read once per restore.
type history struct {
	// txnEnds lists each producer's transaction outcomes in time order.
	txnEnds map[pidEpoch][]txnEnd
	// topicCreated and the config changes, per source topic, in order.
	createT map[string][]timedCreate // every creation of each topic, in order
	configs map[string][]archive.ConfigsAlteredEvent
	configT map[string][]time.Time
	grown   map[string]int32 // CreatePartitions: largest count
	commits []commitEvent
	// deleted lists, per topic, when it was deleted, in order: a topic
	// created again under the name is another topic whose offsets
	// overlap the old one's.
	deleted archive.TopicDeletions
	// coverage is the archive's, by partition, of the topics a restore up
	// to until takes: its holes and known losses. Of a topic deleted and
	// created again it counts only the batches of the topic the cut
	// names, not the other's at the same offsets.
	coverage map[tpKey]archive.PartitionCoverage
}

// missing lists the source offsets below high that the archive does not
// hold, known losses first then holes, in offset order within each.
func (h *history) missing(topic string, partition int32, high int64) []archive.LossRange {
	c, ok := h.coverage[tpKey{topic, partition}]
	if !ok || high <= 0 {
		return nil
	}
	var out []archive.LossRange
	for _, l := range c.KnownLoss {
		if l.Start < high {
			out = append(out, archive.LossRange{Start: l.Start, End: min(l.End, high), Reason: l.Reason})
		}
	}
	for _, hole := range c.Holes {
		if hole[0] < high {
			out = append(out, archive.LossRange{Start: hole[0], End: min(hole[1], high), Reason: "hole"})
		}
	}
	return out
}

type pidEpoch struct {
	pid   int64
	epoch int16
}

type txnEnd struct {
	at     time.Time
	commit bool
}

type commitEvent struct {
	at  time.Time
	txn bool
	ev  archive.OffsetCommitEvent
}

// loadHistory reads the archive's events, and its coverage as a restore
// up to until sees it.
func loadHistory(ctx context.Context, a *archive.Archive, until time.Time) (*history, error) {
	h := &history{
		txnEnds:  map[pidEpoch][]txnEnd{},
		createT:  map[string][]timedCreate{},
		configs:  map[string][]archive.ConfigsAlteredEvent{},
		configT:  map[string][]time.Time{},
		grown:    map[string]int32{},
		deleted:  archive.TopicDeletions{},
		coverage: map[tpKey]archive.PartitionCoverage{},
	}
	for _, c := range a.Coverage() {
		h.coverage[tpKey{c.Topic, c.Partition}] = c
	}
	err := a.Events(ctx, func(_ string, ev *archive.Event) error {
		switch ev.Kind {
		case archive.KindEndTxn:
			var e archive.EndTxnEvent
			if json.Unmarshal(ev.Body, &e) == nil {
				k := pidEpoch{e.ProducerID, e.ProducerEpoch}
				h.txnEnds[k] = append(h.txnEnds[k], txnEnd{ev.Time, e.Commit})
			}
		case archive.KindCreateTopics:
			var e archive.TopicCreatedEvent
			if json.Unmarshal(ev.Body, &e) == nil {
				h.createT[e.Topic] = append(h.createT[e.Topic], timedCreate{ev.Time, e})
			}
		case archive.KindAlterConfigs, archive.KindIncrementalAlterConfigs:
			var e archive.ConfigsAlteredEvent
			if json.Unmarshal(ev.Body, &e) == nil && e.ResourceType == "topic" {
				h.configs[e.ResourceName] = append(h.configs[e.ResourceName], e)
				h.configT[e.ResourceName] = append(h.configT[e.ResourceName], ev.Time)
			}
		case archive.KindDeleteTopics:
			h.deleted.Note(ev)
		case archive.KindCreatePartitions:
			var e archive.PartitionsCreatedEvent
			if json.Unmarshal(ev.Body, &e) == nil && e.Count > h.grown[e.Topic] {
				h.grown[e.Topic] = e.Count
			}
		case archive.KindOffsetCommit, archive.KindTxnOffsetCommit:
			var e archive.OffsetCommitEvent
			if json.Unmarshal(ev.Body, &e) == nil {
				h.commits = append(h.commits, commitEvent{ev.Time, ev.Kind == archive.KindTxnOffsetCommit, e})
			}
		case archive.KindGroupOffsetsSnapshot:
			// What the cluster held for the group when a backfill looked:
			// the positions of consumers that commit around the proxy.
			// Events come in time order, so the later of a snapshot and
			// a commit wins (groupOffsets).
			var e archive.GroupOffsetsSnapshotEvent
			if json.Unmarshal(ev.Body, &e) == nil {
				for _, o := range e.Offsets {
					h.commits = append(h.commits, commitEvent{at: ev.Time, ev: archive.OffsetCommitEvent{
						Group: e.Group, Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}})
				}
			}
		}
		return nil
	})
	for _, ends := range h.txnEnds {
		sort.Slice(ends, func(i, j int) bool { return ends[i].at.Before(ends[j].at) })
	}
	for topic := range h.deleted {
		for k := range h.coverage {
			if k.topic == topic {
				delete(h.coverage, k)
			}
		}
		for _, c := range a.CoverageBetween(topic, h.incarnation(topic, until), h.deletedAfter(topic, until)) {
			h.coverage[tpKey{c.Topic, c.Partition}] = c
		}
	}
	return h, err
}

// txnOutcome is how the transaction a batch of (pid, epoch) acknowledged
// at t ended, by the first EndTxn of that producer at or after t.
func (h *history) txnOutcome(pid int64, epoch int16, t time.Time) (txnEnd, bool) {
	ends := h.txnEnds[pidEpoch{pid, epoch}]
	i := sort.Search(len(ends), func(i int) bool { return !ends[i].at.Before(t) })
	if i == len(ends) {
		return txnEnd{}, false
	}
	return ends[i], true
}

type timedCreate struct {
	at time.Time
	ev archive.TopicCreatedEvent
}

// topicConfigs replays a source topic's creation configs and every config
// change up to the cut, within the topic the cut restores: a topic
// deleted and created again starts afresh at its re-creation.
func (h *history) topicConfigs(topic string, until time.Time) map[string]*string {
	out := map[string]*string{}
	born := h.incarnation(topic, until)
	for _, c := range h.createT[topic] {
		if c.at.Before(born) || (!until.IsZero() && c.at.After(until)) {
			continue
		}
		out = map[string]*string{}
		for _, e := range c.ev.Configs {
			out[e.Name] = e.Value
		}
	}
	for i, e := range h.configs[topic] {
		at := h.configT[topic][i]
		if !until.IsZero() && at.After(until) {
			break
		}
		if at.Before(born) {
			continue // the deleted topic's
		}
		if !e.Incremental {
			out = map[string]*string{}
		}
		for _, c := range e.Configs {
			switch c.Op {
			case "delete":
				delete(out, c.Name)
			case "", "set":
				out[c.Name] = c.Value
			default: // append/subtract on list configs: keep the last value seen
				out[c.Name] = c.Value
			}
		}
	}
	return out
}

// partitionCount is the archived partition count of a source topic, if the
// history knows it.
func (h *history) partitionCount(topic string) int32 {
	n := h.grown[topic]
	if cs := h.createT[topic]; len(cs) > 0 && cs[len(cs)-1].ev.Partitions > n {
		n = cs[len(cs)-1].ev.Partitions
	}
	return n
}

// groupOffsets returns a group's committed offset per (topic, partition)
// as of the cut: the last commit at or before it, counting a transactional
// commit only if its transaction committed by then.
func (h *history) groupOffsets(group string, until time.Time) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, c := range h.commits {
		if c.ev.Group != group || (!until.IsZero() && c.at.After(until)) {
			continue
		}
		if born := h.incarnation(c.ev.Topic, until); !born.IsZero() && !c.at.After(born) {
			continue // a position in the deleted topic of that name
		}
		if c.txn {
			end, ok := h.txnOutcome(c.ev.ProducerID, c.ev.ProducerEpoch, c.at)
			if !ok || !end.commit || (!until.IsZero() && end.at.After(until)) {
				continue
			}
		}
		if out[c.ev.Topic] == nil {
			out[c.ev.Topic] = map[int32]int64{}
		}
		out[c.ev.Topic][c.ev.Partition] = c.ev.Offset
	}
	return out
}

// incarnation is when the topic restored up to until began: its last
// deletion at or before until (the topic then is the one created after
// it), or zero if it was never deleted before until.
func (h *history) incarnation(topic string, until time.Time) time.Time {
	born, _ := h.deleted.Lifetime(topic, until)
	return born
}

// deletedAfter is the first deletion of topic after until (zero if none,
// or until is zero): the restore then takes the topic as it was before.
func (h *history) deletedAfter(topic string, until time.Time) time.Time {
	_, died := h.deleted.Lifetime(topic, until)
	return died
}
