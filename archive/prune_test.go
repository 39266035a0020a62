package archive_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
)

// TestPrune: uploads all acknowledged before the cut go, those after stay;
// --topic keeps uploads that hold other topics or history; a dry run
// (PlanPrune alone) deletes nothing.
func TestPrune(t *testing.T) {
	s := memstore.New()
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	u := newUploader(t, j, s, writerA, nil)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	upload := func(topic string, at time.Time, events bool) {
		t.Helper()
		var evs []archive.Event
		if events {
			evs = append(evs, archive.Event{Time: at, Kind: archive.KindDeleteGroups, Body: []byte(`{"group":"g"}`)})
		}
		j.Append([]archive.Batch{{Topic: topic, Partition: 0, BaseOffset: at.Unix(), AckTime: at, LogAppendTime: -1, Data: recordBatch(fmt.Sprint(at))}}, evs)
		j.Commit()
		if err := u.Flush(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	upload("logs", old, false)
	upload("orders", old.Add(time.Hour), false)
	upload("logs", old.Add(2*time.Hour), true)
	upload("logs", old.Add(48*time.Hour), false)
	a, _ := archive.OpenArchive(ctx(t), s, nil)
	cut := old.Add(24 * time.Hour)

	plan, err := a.PlanPrune(ctx(t), cut, []string{"logs"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Uploads) != 1 || plan.Kept != 3 {
		t.Fatalf("topic prune plans %d uploads, keeps %d; want 1 and 3", len(plan.Uploads), plan.Kept)
	}
	if s.Puts() != 8 {
		t.Fatalf("planning changed the store")
	}
	if err := a.Prune(ctx(t), plan, nil); err != nil {
		t.Fatal(err)
	}
	a, _ = archive.OpenArchive(ctx(t), s, nil)
	plan, _ = a.PlanPrune(ctx(t), cut, nil)
	if len(plan.Uploads) != 2 || plan.Kept != 1 {
		t.Fatalf("full prune plans %d uploads, keeps %d; want 2 and 1", len(plan.Uploads), plan.Kept)
	}
	if err := a.Prune(ctx(t), plan, nil); err != nil {
		t.Fatal(err)
	}
	a, _ = archive.OpenArchive(ctx(t), s, nil)
	cov := a.Coverage()
	if len(cov) != 1 || cov[0].Topic != "logs" || !cov[0].FirstAckTime.Equal(old.Add(48*time.Hour)) {
		t.Fatalf("after prune: %v", strip(cov))
	}
}
