package archive

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TestJournalKeepsTopicBirths: a topic's last deletion outlives its event
// (uploaded, so gone from the journal) and a reopen; an older deletion
// arriving later does not move it back.
func TestJournalKeepsTopicBirths(t *testing.T) {
	dir := t.TempDir()
	t0 := time.UnixMilli(1e12).UTC()
	del := func(topic string, at time.Time) Event {
		return Event{Time: at, Kind: KindDeleteTopics, Body: mustJSON(TopicDeletedEvent{Topic: topic})}
	}
	j := openTestJournal(t, dir, nil)
	done, err := j.Append(nil, []Event{del("t", t0.Add(time.Hour)), {Time: t0, Kind: KindOffsetCommit, Body: []byte("{}")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := j.TopicBirths(); !got["t"].Equal(t0.Add(time.Hour)) || len(got) != 1 {
		t.Fatalf("births %v", got)
	}
	j.Close()
	// What an upload does to events: they go.
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRange([]byte{prefixEvent}, []byte{prefixEvent + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	j = openTestJournal(t, dir, nil)
	if got := j.TopicBirths(); !got["t"].Equal(t0.Add(time.Hour)) {
		t.Fatalf("after the events went and a reopen: births %v", got)
	}
	done, err = j.Append(nil, []Event{del("t", t0), del("u", t0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j.Close()
	ro := openTestJournal(t, dir, func(o *JournalOptions) { o.ReadOnly = true })
	defer ro.Close()
	if got := ro.TopicBirths(); !got["t"].Equal(t0.Add(time.Hour)) || !got["u"].Equal(t0) || len(got) != 2 {
		t.Errorf("births %v, want t at %v and u at %v", got, t0.Add(time.Hour), t0)
	}
}
