package archive

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A topic deleted and created again under its name starts its offsets
// over: the archive then holds two topics' batches at the same offsets,
// told apart by time (restore takes the one its cut names). The topic as
// it is now was born at its last deletion; a batch acknowledged at or
// before then is the old topic's. The backfill needs that to see what the
// new topic is missing: the old topic's batches cover none of it.
//
// The journal keeps each topic's last deletion under meta "births" (JSON
// {"topic": RFC 3339 time}), committed with the deletion's event, so that
// it outlives the event's upload and a restart.

// TopicBirths returns, per topic deleted while this journal recorded, its
// last deletion: when the topic of that name now began.
func (j *Journal) TopicBirths() map[string]time.Time {
	j.topics.Lock()
	defer j.topics.Unlock()
	return maps.Clone(j.topics.births)
}

// loadBirths reads meta "births", and the deletions among the events not
// yet uploaded (a journal older than the meta key has only those).
func (j *Journal) loadBirths() error {
	j.topics.births = map[string]time.Time{}
	if err := j.metaJSON("births", &j.topics.births); err != nil {
		return err
	}
	return j.Events(func(ev *Event) error {
		noteBirth(j.topics.births, ev)
		return nil
	})
}

// metaJSON reads meta name, a JSON value, into v; v stays as it is if
// the key is absent.
func (j *Journal) metaJSON(name string, v any) error {
	b, closer, err := j.db.Get(metaKey(name))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read journal %s: %w", name, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: journal %s: %v", ErrFormat, name, err)
	}
	return nil
}

// setMetaJSON sets meta name to v as JSON in wb.
func setMetaJSON(wb *pebble.Batch, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return wb.Set(metaKey(name), b, nil)
}

// birthsAfter returns the births with those events' deletions added, and
// whether any changed.
func (j *Journal) birthsAfter(events []Event) (map[string]time.Time, bool) {
	var (
		m       map[string]time.Time
		changed bool
	)
	for i := range events {
		if events[i].Kind != KindDeleteTopics {
			continue
		}
		if m == nil {
			m = j.TopicBirths()
		}
		changed = noteBirth(m, &events[i]) || changed
	}
	return m, changed
}

// noteBirth records ev's deletion in m if it is one and the topic's
// latest, and reports whether it did.
func noteBirth(m map[string]time.Time, ev *Event) bool {
	topic, ok := deletedTopic(ev)
	if !ok || !ev.Time.After(m[topic]) {
		return false
	}
	m[topic] = ev.Time.UTC()
	return true
}

// deletedTopic is the topic a KindDeleteTopics event deleted.
func deletedTopic(ev *Event) (string, bool) {
	if ev.Kind != KindDeleteTopics {
		return "", false
	}
	var e TopicDeletedEvent
	if json.Unmarshal(ev.Body, &e) != nil || e.Topic == "" {
		return "", false
	}
	return e.Topic, true
}

// TopicDeletions is, per topic, when it was deleted, in time order: each
// deletion ends one topic of the name and begins the next. Restore and
// impact keep it while they read the events.
type TopicDeletions map[string][]time.Time

// Note records ev if it deleted a topic. Lifetime wants each topic's
// deletions in time order: give the events in order, or sort after.
func (d TopicDeletions) Note(ev *Event) {
	if topic, ok := deletedTopic(ev); ok {
		d[topic] = append(d[topic], ev.Time)
	}
}

// Lifetime is when the topic of that name that existed at at lived: after
// born, its last deletion at or before at, and up to died, its first
// deletion after it (each zero if there is none). A zero at means now:
// the topic as it is (died is zero).
func (d TopicDeletions) Lifetime(topic string, at time.Time) (born, died time.Time) {
	for _, t := range d[topic] {
		if at.IsZero() || !t.After(at) {
			born = t
		} else if died.IsZero() {
			died = t
		}
	}
	return born, died
}

// ArchiveTopicBirths reads every topic's last deletion from the archive's
// events (reading each events block once): what a backfill without a
// journal (amber backfill) goes by.
func ArchiveTopicBirths(ctx context.Context, a *Archive) (map[string]time.Time, error) {
	m := map[string]time.Time{}
	err := a.Events(ctx, func(_ string, ev *Event) error {
		noteBirth(m, ev)
		return nil
	})
	return m, err
}

// kindTopicIDs is an event the tee appends, never stored as one: the
// topic ids it saw change (name → hex id, "" once deleted). The journal
// keeps the current id of each topic under meta "topicids" (the same
// JSON), committed with the events that came with it, so that a tee
// started later knows them and notices a topic deleted and created again
// while no proxy ran.
const kindTopicIDs = "amber_topic_ids"

// TopicIDs returns each topic's id as the tee last saw it.
func (j *Journal) TopicIDs() map[string][16]byte {
	j.topics.Lock()
	defer j.topics.Unlock()
	out := make(map[string][16]byte, len(j.topics.ids))
	for name, h := range j.topics.ids {
		var id [16]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == 16 {
			copy(id[:], b)
			out[name] = id
		}
	}
	return out
}

// loadTopicIDs reads meta "topicids".
func (j *Journal) loadTopicIDs() error {
	j.topics.ids = map[string]string{}
	return j.metaJSON("topicids", &j.topics.ids)
}

// takeTopicIDs removes the kindTopicIDs events from events and returns
// the topic ids with their changes applied, or nil if there were none.
func (j *Journal) takeTopicIDs(events []Event) ([]Event, map[string]string) {
	if !slices.ContainsFunc(events, func(ev Event) bool { return ev.Kind == kindTopicIDs }) {
		return events, nil
	}
	j.topics.Lock()
	ids := maps.Clone(j.topics.ids)
	j.topics.Unlock()
	kept := make([]Event, 0, len(events))
	for _, ev := range events {
		if ev.Kind != kindTopicIDs {
			kept = append(kept, ev)
			continue
		}
		var change map[string]string
		if json.Unmarshal(ev.Body, &change) != nil {
			continue
		}
		for name, id := range change {
			if id == "" {
				delete(ids, name)
			} else {
				ids[name] = id
			}
		}
	}
	return kept, ids
}
