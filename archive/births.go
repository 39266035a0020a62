package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	j.births.Lock()
	defer j.births.Unlock()
	out := make(map[string]time.Time, len(j.births.m))
	for k, v := range j.births.m {
		out[k] = v
	}
	return out
}

// loadBirths reads meta "births", and the deletions among the events not
// yet uploaded (a journal older than the meta key has only those).
func (j *Journal) loadBirths() error {
	j.births.m = map[string]time.Time{}
	v, closer, err := j.db.Get(metaKey("births"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read journal births: %w", err)
	default:
		err := json.Unmarshal(v, &j.births.m)
		closer.Close()
		if err != nil {
			return fmt.Errorf("%w: journal births: %v", ErrFormat, err)
		}
	}
	return j.Events(func(ev *Event) error {
		noteBirth(j.births.m, ev)
		return nil
	})
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
	if ev.Kind != KindDeleteTopics {
		return false
	}
	var e TopicDeletedEvent
	if json.Unmarshal(ev.Body, &e) != nil || e.Topic == "" || !ev.Time.After(m[e.Topic]) {
		return false
	}
	m[e.Topic] = ev.Time.UTC()
	return true
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
