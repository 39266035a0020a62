package archive_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/protocol"
)

// TestBackfillTopicCreatedAgain: a topic deleted and created again under
// its name starts its offsets over, so the old topic's archived batches
// sit at the offsets the new one's records take. Records produced into
// the new topic around the proxy, one with a timestamp older than the
// deletion (as a mirror keeps its source's), must still be backfilled:
// the old batches do not count for the new topic. Checked for a proxy's
// backfill (the journal keeps the deletion after its event is uploaded)
// and for amber backfill (the archive's events); a second pass of each
// fetches nothing again.
func TestBackfillTopicCreatedAgain(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "t"))
	proxied := e.client(t)
	produce(t, proxied, "t", 0, 8)
	adm := kadm.NewClient(proxied)
	if _, err := adm.DeleteTopics(ctx(t), "t"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if _, err := adm.CreateTopic(ctx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	direct := e.direct(t)
	for i := range 4 {
		r := &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "new-%d", i)}
		if i == 1 {
			r.Timestamp = deleted.Add(-time.Hour)
		}
		if err := direct.ProduceSync(ctx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if b := e.j.TopicBirths()["t"]; b.IsZero() || b.After(deleted) {
		t.Fatalf("journal births %v, want t born at its deletion before %v", e.j.TopicBirths(), deleted)
	}

	for _, pass := range []struct {
		name string
		opts archive.BackfillOptions
		want int64
	}{
		{"proxy", archive.BackfillOptions{Journal: e.j}, 4},
		{"proxy again", archive.BackfillOptions{Journal: e.j}, 0},
		{"amber backfill", archive.BackfillOptions{}, 0},
	} {
		rep := backfill(t, direct, s, pass.opts)
		if rep.Offsets != pass.want {
			t.Errorf("%s: backfilled %d offsets, want %d: %+v", pass.name, rep.Offsets, pass.want, rep.Partitions)
		}
	}
	a := openArchive(t, s)
	births, err := archive.ArchiveTopicBirths(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	born := births["t"]
	if born.IsZero() {
		t.Fatalf("archive births %v", births)
	}
	var got []string
	err = a.ReadPartitionAckedAfter(ctx(t), "t", 0, born, func(b *archive.Batch) error {
		got = append(got, fmt.Sprintf("%d:%s", b.BaseOffset, recordValues(t, b.Data)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0:[new-0] 1:[new-1] 2:[new-2] 3:[new-3]]" {
		t.Errorf("the topic as it is now, from the archive: %v", got)
	}
}

// recordValues decodes the values of a record batch.
func recordValues(t *testing.T, data []byte) []string {
	t.Helper()
	h, err := protocol.ParseBatchHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := protocol.DecodeRecords(data, &h, 0, archive.Codec())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}
