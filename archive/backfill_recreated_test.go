package archive_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
	"github.com/amber-kafka/amber/proxy"
)

// TestBackfillTopicCreatedAgain: a topic deleted and created again under
// its name starts its offsets over, so the old topic's archived batches
// sit at the offsets the new one's records take. Records produced into
// the new topic around the proxy, one with a timestamp older than the
// deletion (as a mirror keeps its source's), must still be backfilled:
// the old batches do not count for the new topic. Checked for a proxy's
// backfill (the journal keeps the deletion after its event is uploaded)
// and for amber backfill (the archive's events); a second pass of each
// fetches nothing again; and verify --against compares the cluster with
// the new topic's batches only.
func TestBackfillTopicCreatedAgain(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "t"))
	proxied := e.client(t)
	produce(t, proxied, "t", 0, 8)
	testkit.RecreateTopic(t, proxied, "t")
	deleted := time.Now()
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
	if got := currentTopic(t, s, "t"); fmt.Sprint(got) != "[0:[new-0] 1:[new-1] 2:[new-2] 3:[new-3]]" {
		t.Errorf("the topic as it is now, from the archive: %v", got)
	}
	// verify --against compares the topic as it is now, not the old one's
	// batches at the same offsets.
	if cmp := compare(t, s, direct, "t"); !cmp.OK() || cmp.Partitions[0].Matched != 4 {
		t.Errorf("compared with the cluster: %+v", cmp.Partitions)
	}
}

// currentTopic reads partition 0 of topic as it is now (what was
// acknowledged after its last deletion) from the archive in s: each
// batch as "offset:[values]".
func currentTopic(t *testing.T, s archive.Store, topic string) []string {
	t.Helper()
	a := openArchive(t, s)
	births, err := archive.ArchiveTopicBirths(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if births[topic].IsZero() {
		t.Fatalf("the archive records no deletion of %s: %v", topic, births)
	}
	var got []string
	err = a.ReadPartitionAckedAfter(ctx(t), topic, 0, births[topic], func(b *archive.Batch) error {
		got = append(got, fmt.Sprintf("%d:%s", b.BaseOffset, recordValues(t, b.Data)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
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

// TestTopicCreatedAgainWhileNoProxyRan: the topic is deleted and created
// again, and written to, while the proxy is down. The journal kept the
// topic's id from the first run, so the restarted proxy's tee notices the
// new id in the first Metadata response and journals an observed
// deletion; the backfill then fetches what the new topic got while no
// proxy ran (timestamps before the deletion was noticed), and the topic
// as it is now reads back whole.
func TestTopicCreatedAgainWhileNoProxyRan(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "t"))
	dir := filepath.Join(t.TempDir(), "journal")
	start := func() (*archive.Journal, *proxy.Proxy, *kgo.Client) {
		j, err := archive.OpenJournal(archive.JournalOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		p, err := proxy.New(proxy.Options{Upstreams: c.ListenAddrs(), Listen: "127.0.0.1:0", Tee: archive.NewTee(j, archive.TeeOptions{Durability: archive.Sync})})
		if err == nil {
			err = p.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		return j, p, cl
	}
	stop := func(j *archive.Journal, p *proxy.Proxy, cl *kgo.Client) {
		cl.Close()
		if err := p.Shutdown(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := memstore.New()
	j, p, cl := start()
	produce(t, cl, "t", 0, 6)
	if err := newUploader(t, j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stop(j, p, cl)

	direct, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	testkit.RecreateTopic(t, direct, "t")
	for i := range 3 {
		if err := direct.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "down-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)

	j, p, cl = start()
	defer stop(j, p, cl)
	if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte("up-3")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.TopicBirths()["t"]; !ok {
		t.Fatalf("the restarted proxy did not notice t was created again: births %v", j.TopicBirths())
	}
	if rep := backfill(t, direct, s, archive.BackfillOptions{Journal: j}); rep.Offsets != 3 {
		t.Errorf("backfilled %d offsets, want the 3 produced while no proxy ran: %+v", rep.Offsets, rep.Partitions)
	}
	if err := newUploader(t, j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := currentTopic(t, s, "t")
	if fmt.Sprint(got) != "[0:[down-0] 1:[down-1] 2:[down-2] 3:[up-3]]" {
		t.Errorf("the topic as it is now, from the archive: %v", got)
	}
	if cmp := compare(t, s, direct, "t"); !cmp.OK() || cmp.Partitions[0].Matched != 4 {
		t.Errorf("compared with the cluster: %+v", cmp.Partitions)
	}
}
