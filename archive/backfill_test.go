package archive_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

const writerBackfill = "00000000000000bf"

// direct is a client of e's cluster that bypasses the proxy.
func (e *teed) direct(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}, {Key: "null"}}}
		if err := cl.ProduceSync(ctx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// backfill runs one pass into s through a fresh Writer and returns its
// report.
func backfill(t *testing.T, cl *kgo.Client, s archive.Store, opts archive.BackfillOptions) *archive.BackfillReport {
	t.Helper()
	w, err := archive.NewWriter(ctx(t), archive.WriterOptions{Store: s, WriterID: archive.NewWriterID(), FlushBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	opts.Client, opts.Store, opts.Sink = cl, s, w
	b, err := archive.NewBackfiller(opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.Step(ctx(t))
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if err := w.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return rep
}

func openArchive(t *testing.T, s archive.Store) *archive.Archive {
	t.Helper()
	a, err := archive.OpenArchive(ctx(t), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func compare(t *testing.T, s archive.Store, cl *kgo.Client, topics ...string) *archive.Comparison {
	t.Helper()
	cmp, err := openArchive(t, s).CompareWithCluster(ctx(t), archive.CompareOptions{Client: cl, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	return cmp
}

func coverageOf(t *testing.T, s archive.Store, topic string) map[int32]archive.PartitionCoverage {
	t.Helper()
	out := map[int32]archive.PartitionCoverage{}
	for _, c := range openArchive(t, s).Coverage() {
		if c.Topic == topic {
			out[c.Partition] = c
		}
	}
	return out
}

func verifyOK(t *testing.T, s archive.Store) *archive.IntegrityReport {
	t.Helper()
	rep, err := archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("verify: %v", rep.Problems)
	}
	return rep
}

// TestBackfillProducerAroundTheProxy: records produced straight to the
// cluster are holes; verify against the cluster finds them missing and
// names their offsets; a backfill fetches exactly them, stored as
// documented (client id, ack time, producer form); then the archive
// equals the cluster record by record and passes the integrity check.
func TestBackfillProducerAroundTheProxy(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "t"))
	proxied, direct := e.client(t), e.direct(t)
	produce(t, proxied, "t", 0, 5)
	produce(t, direct, "t", 5, 3)
	produce(t, proxied, "t", 8, 4)
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}

	cmp := compare(t, s, direct, "t")
	p := cmp.Partitions[0]
	if cmp.OK() || p.Missing != 3 || p.Matched != 9 || p.Differing != 0 || fmt.Sprint(p.MissingRanges) != "[[5 8]]" {
		t.Fatalf("before backfill: %+v, want 3 missing at [5,8), 9 matched", p)
	}
	if c := coverageOf(t, s, "t")[0]; fmt.Sprint(c.Holes) != "[[5 8]]" {
		t.Fatalf("holes %v, want [[5 8]]", c.Holes)
	}

	rep := backfill(t, direct, s, archive.BackfillOptions{})
	if rep.Offsets != 3 || rep.Batches != 3 || fmt.Sprint(rep.Partitions[0].Missing) != "[[5 8]]" {
		t.Errorf("backfill report: %+v", rep.Partitions)
	}
	if cmp := compare(t, s, direct, "t"); !cmp.OK() || cmp.Matched != 12 {
		t.Errorf("after backfill: %+v", cmp.Partitions)
	}
	if c := coverageOf(t, s, "t")[0]; len(c.Holes) != 0 || c.Records != 12 || len(c.KnownLoss) != 0 {
		t.Errorf("coverage after backfill: %+v", c)
	}
	verifyOK(t, s)

	// Backfilled batches are stored as a producer sends them, marked.
	raw, err := testkitFetch(t, direct, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	openArchive(t, s).ReadPartition(ctx(t), "t", 0, func(b *archive.Batch) error {
		h, _ := protocol.ParseBatchHeader(b.Data)
		if b.BaseOffset < 5 || b.BaseOffset >= 8 {
			if b.ClientID == archive.DefaultBackfillClientID {
				t.Errorf("batch at %d marked as backfilled", b.BaseOffset)
			}
			return nil
		}
		n++
		if b.ClientID != archive.DefaultBackfillClientID || h.FirstOffset != 0 || h.PartitionLeaderEpoch != -1 ||
			!b.AckTime.Equal(time.UnixMilli(h.MaxTimestamp)) || b.LogAppendTime != -1 || !sameBatch(b.Data, raw[b.BaseOffset]) {
			t.Errorf("backfilled batch at %d: client %q, first offset %d, epoch %d, ack %s (max ts %d), append %d",
				b.BaseOffset, b.ClientID, h.FirstOffset, h.PartitionLeaderEpoch, b.AckTime, h.MaxTimestamp, b.LogAppendTime)
		}
		return nil
	})
	if n != 3 {
		t.Errorf("%d backfilled batches, want 3", n)
	}

	// A second pass finds nothing to do, and writes no second copy.
	if rep := backfill(t, direct, s, archive.BackfillOptions{NoSnapshots: true}); rep.Offsets != 0 || rep.KnownLoss != 0 {
		t.Errorf("second pass: %+v", rep)
	}
}

// TestBackfillTransactionMarkers: committed and aborted transactions
// through the proxy leave the markers as holes; after a backfill there is
// none, the markers are archived as the control batches the broker wrote,
// and read-uncommitted equality holds (aborted data included).
func TestBackfillTransactionMarkers(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(2, "tx"))
	cl := e.client(t, kgo.TransactionalID("t1"), kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i, commit := range []bool{true, false, true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			if err := cl.ProduceSync(ctx(t), &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "a%d", i)}, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "b%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for p, c := range coverageOf(t, s, "tx") {
		if len(c.Holes) != 3 {
			t.Errorf("partition %d: holes %v, want 3 markers inside the range", p, c.Holes)
		}
	}
	direct := e.direct(t)
	rep := backfill(t, direct, s, archive.BackfillOptions{Topics: []string{"tx"}})
	if rep.Offsets != 8 || rep.Batches != 8 {
		t.Errorf("backfilled %d offsets in %d batches, want the 8 markers", rep.Offsets, rep.Batches)
	}
	for p, c := range coverageOf(t, s, "tx") {
		if len(c.Holes) != 0 || c.EndOffset != 12 {
			t.Errorf("partition %d after backfill: %+v", p, c)
		}
	}
	controls := 0
	for p := int32(0); p < 2; p++ {
		openArchive(t, s).ReadPartition(ctx(t), "tx", p, func(b *archive.Batch) error {
			if h, _ := protocol.ParseBatchHeader(b.Data); h.Control() {
				controls++
			}
			return nil
		})
	}
	if controls != 8 {
		t.Errorf("%d control batches archived, want 8", controls)
	}
	if cmp := compare(t, s, direct, "tx"); !cmp.OK() || cmp.Matched != 24 {
		t.Errorf("compare: %+v", cmp.Partitions)
	}
	verifyOK(t, s)
}

// TestBackfillKnownLossAfterRetention: records produced around the proxy
// and then deleted by retention (DeleteRecords) before any backfill ran
// are recorded as a known loss, which ls shows and which is no hole; what
// the cluster still has is fetched; a later pass records nothing twice.
func TestBackfillKnownLossAfterRetention(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "r"))
	proxied, direct := e.client(t), e.direct(t)
	produce(t, proxied, "r", 0, 10)  // archived: [0,10)
	produce(t, direct, "r", 10, 20)  // around the proxy: [10,30)
	produce(t, proxied, "r", 30, 10) // archived: [30,40)
	produce(t, direct, "r", 40, 5)   // around the proxy: [40,45)
	if err := e.c.DeleteRecords("r", 0, 20); err != nil {
		t.Fatal(err)
	}
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rep := backfill(t, direct, s, archive.BackfillOptions{NoSnapshots: true})
	p := rep.Partitions[0]
	if fmt.Sprint(p.KnownLoss) != "[{10 20 deleted}]" || p.Offsets != 15 || fmt.Sprint(p.Missing) != "[[20 30] [40 45]]" {
		t.Errorf("backfill: %+v, want the loss [10,20) and 15 offsets fetched", p)
	}
	c := coverageOf(t, s, "r")[0]
	if fmt.Sprint(c.KnownLoss) != "[{10 20 deleted}]" || len(c.Holes) != 0 || c.StartOffset != 0 || c.EndOffset != 45 {
		t.Errorf("coverage: %+v", c)
	}
	if cmp := compare(t, s, direct, "r"); !cmp.OK() || cmp.Matched != 25 {
		t.Errorf("compare: %+v", cmp.Partitions)
	}

	// Retention of everything archived since: nothing more is lost.
	e.c.DeleteRecords("r", 0, 45)
	if rep := backfill(t, direct, s, archive.BackfillOptions{NoSnapshots: true}); rep.KnownLoss != 0 || rep.Offsets != 0 {
		t.Errorf("second pass: %+v", rep.Partitions)
	}
	verifyOK(t, s)

	// A partition the archive never saw, emptied by retention.
	if _, err := kadm.NewClient(direct).CreateTopic(ctx(t), 1, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	produce(t, direct, "gone", 0, 7)
	e.c.DeleteRecords("gone", 0, -1)
	backfill(t, direct, s, archive.BackfillOptions{NoSnapshots: true})
	if c := coverageOf(t, s, "gone")[0]; fmt.Sprint(c.KnownLoss) != "[{0 7 deleted}]" || c.Batches != 0 || c.StartOffset != 7 {
		t.Errorf("emptied partition: %+v", c)
	}
}

// TestBackfillKnownLossAfterCompaction: offsets compaction removed from
// inside the log before a backfill ran are recorded as compacted.
func TestBackfillKnownLossAfterCompaction(t *testing.T) {
	e := startTeed(t, archive.Sync)
	direct := e.direct(t)
	if _, err := kadm.NewClient(direct).CreateTopic(ctx(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "cmp"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		key := fmt.Appendf(nil, "k%d", i%3)
		if i == 0 {
			key = []byte("unique") // survives, so the log starts at 0
		}
		if err := direct.ProduceSync(ctx(t), &kgo.Record{Topic: "cmp", Key: key, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.c.Compact()
	s := memstore.New()
	rep := backfill(t, direct, s, archive.BackfillOptions{NoSnapshots: true})
	p := rep.Partitions[0]
	var lost int64
	for _, l := range p.KnownLoss {
		if l.Reason != archive.LossCompacted {
			t.Errorf("loss %+v, want compacted", l)
		}
		lost += l.End - l.Start
	}
	if lost+p.Offsets != 12 || fmt.Sprint(p.KnownLoss) != "[{1 8 compacted}]" {
		t.Errorf("backfill after compaction: %d offsets fetched, %d lost (%v); want 12 in all", p.Offsets, lost, p.KnownLoss)
	}
	c := coverageOf(t, s, "cmp")[0]
	if len(c.Holes) != 0 || len(c.KnownLoss) == 0 {
		t.Errorf("coverage: %+v", c)
	}
	if cmp := compare(t, s, direct, "cmp"); !cmp.OK() {
		t.Errorf("compare: %+v", cmp.Partitions)
	}
}

// TestBackfillSnapshots: topic configs and group offsets are written as
// snapshot events; a long-running backfiller writes them again only when
// they change.
func TestBackfillSnapshots(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(2, "s"))
	direct := e.direct(t)
	adm := kadm.NewClient(direct)
	if _, err := adm.AlterTopicConfigs(ctx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, "s"); err != nil {
		t.Fatal(err)
	}
	produce(t, direct, "s", 0, 3)
	if _, err := adm.CommitOffsets(ctx(t), "g1", kadm.OffsetsFromRecords(kgo.Record{Topic: "s", Partition: 0, Offset: 1})); err != nil {
		t.Fatal(err)
	}
	s := memstore.New()
	w, err := archive.NewWriter(ctx(t), archive.WriterOptions{Store: s, WriterID: writerBackfill})
	if err != nil {
		t.Fatal(err)
	}
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: direct, Store: s, Sink: w})
	if err != nil {
		t.Fatal(err)
	}
	step := func() *archive.BackfillReport {
		rep, err := b.Step(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx(t)); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := step(); rep.ConfigSnapshots != 1 || rep.GroupSnapshots != 1 {
		t.Errorf("first pass: %d config and %d group snapshots, want 1 and 1", rep.ConfigSnapshots, rep.GroupSnapshots)
	}
	if rep := step(); rep.ConfigSnapshots != 0 || rep.GroupSnapshots != 0 {
		t.Errorf("unchanged: %d config and %d group snapshots, want none", rep.ConfigSnapshots, rep.GroupSnapshots)
	}
	if _, err := adm.CommitOffsets(ctx(t), "g1", kadm.OffsetsFromRecords(kgo.Record{Topic: "s", Partition: 0, Offset: 2})); err != nil {
		t.Fatal(err)
	}
	if rep := step(); rep.ConfigSnapshots != 0 || rep.GroupSnapshots != 1 {
		t.Errorf("after a commit: %d config and %d group snapshots, want 0 and 1", rep.ConfigSnapshots, rep.GroupSnapshots)
	}
	var configs []archive.ConfigSnapshotEvent
	var groups []archive.GroupOffsetsSnapshotEvent
	openArchive(t, s).Events(ctx(t), func(_ string, ev *archive.Event) error {
		switch ev.Kind {
		case archive.KindConfigSnapshot:
			var c archive.ConfigSnapshotEvent
			json.Unmarshal(ev.Body, &c)
			configs = append(configs, c)
		case archive.KindGroupOffsetsSnapshot:
			var g archive.GroupOffsetsSnapshotEvent
			json.Unmarshal(ev.Body, &g)
			groups = append(groups, g)
		}
		if ev.ClientID != archive.DefaultBackfillClientID {
			t.Errorf("%s event with client id %q", ev.Kind, ev.ClientID)
		}
		return nil
	})
	if len(configs) != 1 || configs[0].Topic != "s" || configs[0].Partitions != 2 || configs[0].ReplicationFactor < 1 {
		t.Fatalf("config snapshots %+v", configs)
	}
	found := false
	for _, c := range configs[0].Configs {
		if c.Name == "retention.ms" && c.Value != nil && *c.Value == "3600000" && c.Source == "DYNAMIC_TOPIC_CONFIG" {
			found = true
		}
	}
	if !found {
		t.Errorf("retention.ms=3600000 (DYNAMIC_TOPIC_CONFIG) not in %+v", configs[0].Configs)
	}
	if len(groups) != 2 || fmt.Sprint(groups[0].Offsets) != "[{s 0 2 0 }]" || fmt.Sprint(groups[1].Offsets) != "[{s 0 3 0 }]" {
		t.Errorf("group snapshots %+v", groups)
	}
}

// TestBackfillIntoJournalWithSettle: the proxy's way. Batches go into its
// journal (its uploader ships them); what the journal holds counts as
// archived; with Settle, a pass fetches only below a high watermark seen
// at least Settle ago.
func TestBackfillIntoJournalWithSettle(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "j"))
	direct := e.direct(t)
	produce(t, e.client(t), "j", 0, 3)
	produce(t, direct, "j", 3, 3)
	s := memstore.New()
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: direct, Store: s, Journal: e.j, Sink: &archive.JournalSink{Journal: e.j},
		Settle: 200 * time.Millisecond, NoSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.Step(ctx(t))
	if err != nil || rep.Offsets != 0 {
		t.Fatalf("first pass: %v, %d offsets; want none before the watermark settles", err, rep.Offsets)
	}
	time.Sleep(250 * time.Millisecond)
	produce(t, direct, "j", 6, 2) // newer than the settled watermark
	rep, err = b.Step(ctx(t))
	if err != nil || rep.Offsets != 3 || fmt.Sprint(rep.Partitions[0].Missing) != "[[3 6]]" {
		t.Fatalf("second pass: %v, %+v; want [3,6) only (the journal holds [0,3))", err, rep.Partitions)
	}
	if c := coverage(t, e.j, "j")[0]; c.EndOffset != 6 || len(c.Holes) != 0 {
		t.Errorf("journal coverage %+v", c)
	}
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	rep, err = b.Step(ctx(t)) // the archive is refreshed, not reread
	if err != nil || rep.Offsets != 2 {
		t.Fatalf("third pass: %v, %+v", err, rep.Partitions)
	}
	e.j.Commit()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if cmp := compare(t, s, direct, "j"); !cmp.OK() || cmp.Matched != 8 {
		t.Errorf("compare: %+v", cmp.Partitions)
	}
}

// TestVerifyNamesDamagedObjects: a byte flipped in a segment is reported
// naming the segment (checksum and block); one flipped in an index names
// the index; an orphaned segment is only a warning.
func TestVerifyNamesDamagedObjects(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(2, "v"))
	produce(t, e.client(t), "v", 0, 20)
	s := memstore.New()
	if err := newUploader(t, e.j, s, writerA, nil).Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, s)
	if rep.Indexes != 1 || rep.Segments != 1 || rep.Batches != 20 || rep.Records != 20 {
		t.Errorf("verify counted %+v", rep)
	}
	seg, idx := archive.SegmentKey(writerA, 0), archive.IndexKey(writerA, 0)
	s.Corrupt(seg, 100)
	rep, err := archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Problems) != 2 || rep.Problems[0].Object != seg || !strings.Contains(rep.Problems[0].Message, "SHA-256") ||
		rep.Problems[1].Block != 0 || !strings.Contains(rep.Problems[1].Message, "checksum") {
		t.Errorf("flipped segment byte: %v", rep.Problems)
	}
	s.Corrupt(seg, 100) // flip it back
	s.Corrupt(idx, 12)
	s.Put(ctx(t), archive.SegmentKey(writerB, 0), strings.NewReader("AMBRSEG1"), 8)
	rep, _ = archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{})
	if rep.OK() || len(rep.Problems) != 3 || rep.Problems[0].Object != idx || !strings.Contains(rep.Problems[0].Message, "checksum") ||
		!rep.Problems[2].Warning || rep.Problems[2].Object != archive.SegmentKey(writerB, 0) {
		t.Errorf("flipped index byte and an orphan: %v", rep.Problems)
	}
}

// TestCompareFindsDifferences: an archived record that differs from the
// cluster's at its offset is reported with the fields that differ.
func TestCompareFindsDifferences(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "d"))
	direct := e.direct(t)
	produce(t, direct, "d", 0, 3)
	s := memstore.New()
	w, err := archive.NewWriter(ctx(t), archive.WriterOptions{Store: s, WriterID: writerBackfill})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := testkitFetch(t, direct, "d", 0)
	if err != nil {
		t.Fatal(err)
	}
	var batches []archive.Batch
	for off := int64(0); off < 3; off++ {
		b := append([]byte(nil), raw[off]...)
		if off == 1 {
			recs, _ := decode(b)
			recs[0].Value = []byte("tampered")
			recs[0].Headers = nil
			b, _ = protocol.EncodeBatch(recs, 1, 0, -1, -1, -1, nil)
		}
		binary.BigEndian.PutUint64(b, 0)
		batches = append(batches, archive.Batch{Topic: "d", BaseOffset: off, AckTime: time.Now(), LogAppendTime: -1, Data: b})
	}
	w.Write(ctx(t), batches, nil)
	if err := w.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	cmp := compare(t, s, direct, "d")
	p := cmp.Partitions[0]
	if cmp.OK() || p.Matched != 2 || p.Differing != 1 || fmt.Sprint(p.Differences) != "[{1 [value headers]}]" {
		t.Errorf("compare: %+v", p)
	}
}

func decode(b []byte) ([]protocol.Record, error) {
	h, err := protocol.ParseBatchHeader(b)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeRecords(b, &h, h.FirstOffset, archive.Codec())
}

func testkitFetch(t *testing.T, cl *kgo.Client, topic string, p int32) (map[int64][]byte, error) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return testkit.FetchRawBatches(c, cl, topic, p)
}

// TestBackfillEncrypted: a backfill into an encrypted archive encrypts what
// it writes with the archive's key; verify needs the key and says so
// without it.
func TestBackfillEncrypted(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "enc"))
	direct := e.direct(t)
	produce(t, direct, "enc", 0, 5)
	key, err := archive.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := memstore.New()
	w, err := archive.NewWriter(ctx(t), archive.WriterOptions{Store: s, WriterID: writerBackfill, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: direct, Store: s, Key: key, Sink: w, NoSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := b.Step(ctx(t)); err != nil || rep.Offsets != 5 {
		t.Fatalf("backfill: %v, %+v", err, rep)
	}
	if err := w.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if rep, err := archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{Key: key}); err != nil || !rep.OK() || rep.Batches != 5 {
		t.Errorf("verify with the key: %v, %+v", err, rep)
	}
	rep, err := archive.VerifyIntegrity(ctx(t), s, archive.VerifyOptions{})
	if err != nil || rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), key.ID()) {
		t.Errorf("verify without the key: %v, %v", err, rep.Problems)
	}
	a, err := archive.OpenArchive(ctx(t), s, key)
	if err != nil {
		t.Fatal(err)
	}
	if cmp, err := a.CompareWithCluster(ctx(t), archive.CompareOptions{Client: direct}); err != nil || !cmp.OK() || cmp.Matched != 5 {
		t.Errorf("compare: %v, %+v", err, cmp)
	}
}
