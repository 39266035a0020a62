package impact

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// position is a group's committed offset on a partition from a time on.
type position struct {
	at     time.Time
	offset int64
}

// gkey is a group's partition.
type gkey struct {
	group string
	tp
}

// track is what the archive says of one group on one partition.
type track struct {
	// commits are the commits that count, in the order they took effect:
	// OffsetCommits at their ack time, TxnOffsetCommits at their
	// transaction's commit.
	commits []position
	// aborted and pending count the transactional commits that do not:
	// their transaction aborted, or the archive holds no outcome.
	aborted, pending int
	// snapshots are a backfill's group offset snapshots, in time order.
	snapshots []position
}

// history is the commit history of the analysed topics.
type history struct {
	tracks map[gkey]*track
	// unnamed counts, per group, the commits archived without a topic
	// name: TxnOffsetCommit v6+ names topics by id, which a proxy that
	// predates support for it recorded as "".
	unnamed map[string]int
	// deleted lists each analysed topic's deletions: a topic created
	// again under its name is another topic at the same offsets.
	deleted archive.TopicDeletions
}

// lifetime is when the topic of a name that a window falls in lived:
// after born (its last deletion before the window, zero if none) and not
// after died (its first deletion after the window, zero if none).
type lifetime struct{ born, died time.Time }

func (l lifetime) has(at time.Time) bool {
	return (l.born.IsZero() || at.After(l.born)) && (l.died.IsZero() || !at.After(l.died))
}

// lifetimes finds, per topic, the lifetime the window [since, until]
// falls in, or fails if a deletion falls inside the window.
func (h *history) lifetimes(topics []string, since, until time.Time) (map[string]lifetime, error) {
	out := map[string]lifetime{}
	for _, topic := range topics {
		born, died := h.deleted.Lifetime(topic, since)
		if !died.IsZero() && !died.After(until) {
			return nil, fmt.Errorf("%w: %s was deleted and created again at %s; analyze the window up to then and from then on separately",
				ErrWindowSpansDeletion, topic, fmtTime(died))
		}
		out[topic] = lifetime{born, died}
	}
	return out, nil
}

// within keeps the commits and snapshots made while l lasted.
func (t *track) within(l lifetime) *track {
	keep := func(ps []position) []position {
		var out []position
		for _, p := range ps {
			if l.has(p.at) {
				out = append(out, p)
			}
		}
		return out
	}
	return &track{commits: keep(t.commits), aborted: t.aborted, pending: t.pending, snapshots: keep(t.snapshots)}
}

type pidEpoch struct {
	pid   int64
	epoch int16
}

type txnEnd struct {
	at     time.Time
	commit bool
}

type txnCommit struct {
	at time.Time
	ev archive.OffsetCommitEvent
}

// loadHistory reads every event of a (and j, if set) and keeps the
// commits, transaction outcomes and group snapshots of topics.
func loadHistory(ctx context.Context, a *archive.Archive, j *archive.Journal, topics map[string]bool) (*history, error) {
	h := &history{tracks: map[gkey]*track{}, unnamed: map[string]int{}, deleted: archive.TopicDeletions{}}
	var (
		ends = map[pidEpoch][]txnEnd{}
		txns []txnCommit
		// seen drops an event the journal still holds after uploading
		// it (a crash between the upload and the journal's deletion).
		seen = map[string]bool{}
	)
	get := func(group, topic string, partition int32) *track {
		k := gkey{group, tp{topic, partition}}
		t := h.tracks[k]
		if t == nil {
			t = &track{}
			h.tracks[k] = t
		}
		return t
	}
	visit := func(ev *archive.Event) error {
		switch ev.Kind {
		case archive.KindOffsetCommit, archive.KindTxnOffsetCommit, archive.KindEndTxn, archive.KindGroupOffsetsSnapshot, archive.KindDeleteTopics:
		default:
			return nil
		}
		if j != nil {
			id := fmt.Sprintf("%s %d %s", ev.Kind, ev.Time.UnixNano(), ev.Body)
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		switch ev.Kind {
		case archive.KindOffsetCommit:
			var e archive.OffsetCommitEvent
			if err := json.Unmarshal(ev.Body, &e); err != nil {
				return fmt.Errorf("%s event at %s: %w", ev.Kind, ev.Time.Format(time.RFC3339Nano), err)
			}
			if e.Topic == "" {
				h.unnamed[e.Group]++
			}
			if topics[e.Topic] && e.Offset >= 0 {
				t := get(e.Group, e.Topic, e.Partition)
				t.commits = append(t.commits, position{ev.Time, e.Offset})
			}
		case archive.KindTxnOffsetCommit:
			var e archive.OffsetCommitEvent
			if err := json.Unmarshal(ev.Body, &e); err != nil {
				return fmt.Errorf("%s event at %s: %w", ev.Kind, ev.Time.Format(time.RFC3339Nano), err)
			}
			if e.Topic == "" {
				h.unnamed[e.Group]++
			}
			if topics[e.Topic] && e.Offset >= 0 {
				txns = append(txns, txnCommit{ev.Time, e})
			}
		case archive.KindEndTxn:
			var e archive.EndTxnEvent
			if err := json.Unmarshal(ev.Body, &e); err != nil {
				return fmt.Errorf("%s event at %s: %w", ev.Kind, ev.Time.Format(time.RFC3339Nano), err)
			}
			k := pidEpoch{e.ProducerID, e.ProducerEpoch}
			ends[k] = append(ends[k], txnEnd{ev.Time, e.Commit})
		case archive.KindDeleteTopics:
			h.deleted.Note(ev)
		case archive.KindGroupOffsetsSnapshot:
			var e archive.GroupOffsetsSnapshotEvent
			if err := json.Unmarshal(ev.Body, &e); err != nil {
				return fmt.Errorf("%s event at %s: %w", ev.Kind, ev.Time.Format(time.RFC3339Nano), err)
			}
			for _, o := range e.Offsets {
				if topics[o.Topic] && o.Offset >= 0 {
					t := get(e.Group, o.Topic, o.Partition)
					t.snapshots = append(t.snapshots, position{ev.Time, o.Offset})
				}
			}
		}
		return nil
	}
	if err := a.Events(ctx, func(_ string, ev *archive.Event) error { return visit(ev) }); err != nil {
		return nil, err
	}
	if j != nil {
		if err := j.Events(visit); err != nil {
			return nil, err
		}
	}

	for _, es := range ends {
		sort.SliceStable(es, func(i, j int) bool { return es[i].at.Before(es[j].at) })
	}
	for _, c := range txns {
		t := get(c.ev.Group, c.ev.Topic, c.ev.Partition)
		// The transaction a commit belongs to ends with the producer's
		// first EndTxn at or after it.
		es := ends[pidEpoch{c.ev.ProducerID, c.ev.ProducerEpoch}]
		i := sort.Search(len(es), func(i int) bool { return !es[i].at.Before(c.at) })
		switch {
		case i == len(es):
			t.pending++
		case !es[i].commit:
			t.aborted++
		default:
			t.commits = append(t.commits, position{es[i].at, c.ev.Offset})
		}
	}
	for _, t := range h.tracks {
		sort.SliceStable(t.commits, func(i, j int) bool { return t.commits[i].at.Before(t.commits[j].at) })
		sort.SliceStable(t.snapshots, func(i, j int) bool { return t.snapshots[i].at.Before(t.snapshots[j].at) })
	}
	for _, ds := range h.deleted {
		sort.Slice(ds, func(i, j int) bool { return ds[i].Before(ds[j]) })
	}
	return h, nil
}
