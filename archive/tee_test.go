package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/proxy"
)

// teed is a kfake cluster behind a proxy whose tee writes a journal.
type teed struct {
	c   *kfake.Cluster
	p   *proxy.Proxy
	j   *archive.Journal
	tee *archive.Tee
}

func startTeed(t *testing.T, d archive.Durability, kopts ...kfake.Opt) *teed {
	t.Helper()
	c := testkit.NewCluster(t, kopts...)
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	tee := archive.NewTee(j, archive.TeeOptions{Durability: d})
	// Registered after the journal's cleanup, so it runs first.
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), Tee: tee})
	return &teed{c: c, p: p, j: j, tee: tee}
}

func (e *teed) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.p.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// assertJournalMatchesCluster checks, partition by partition, that the
// journal holds byte for byte the batches the cluster holds at the same
// offsets, except those in skip (markers written by the broker, never by a
// client), and that coverage has holes only there.
func assertJournalMatchesCluster(t *testing.T, e *teed, topic string, partitions int32) (journaled int) {
	t.Helper()
	journaled, missing := compareJournal(t, e, topic, partitions)
	for _, m := range missing {
		t.Errorf("%s: batch in the cluster, not in the journal", m)
	}
	return journaled
}

// compareJournal checks that every journaled batch is byte for byte the
// cluster's at its offset and that no control batch is journaled. It
// returns how many batches match and which client batches of the cluster
// the journal lacks ("topic/partition@offset").
func compareJournal(t *testing.T, e *teed, topic string, partitions int32) (journaled int, missing []string) {
	t.Helper()
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	got := map[int32]map[int64][]byte{}
	if err := e.j.Batches(func(b *archive.Batch) error {
		if b.Topic == topic {
			if got[b.Partition] == nil {
				got[b.Partition] = map[int64][]byte{}
			}
			got[b.Partition][b.BaseOffset] = append([]byte(nil), b.Data...)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		want, err := testkit.FetchRawBatches(ctx(t), direct, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for off, cb := range want {
			control := cb[22]&0x20 != 0
			jb, ok := got[p][off]
			switch {
			case control && ok:
				t.Errorf("%s/%d@%d: a control batch in the journal: clients never send them", topic, p, off)
			case control:
			case !ok:
				missing = append(missing, fmt.Sprintf("%s/%d@%d", topic, p, off))
			case !sameBatch(jb, cb):
				t.Errorf("%s/%d@%d: journaled batch differs from the cluster's", topic, p, off)
			default:
				journaled++
			}
		}
		for off := range got[p] {
			if _, ok := want[off]; !ok {
				t.Errorf("%s/%d@%d: in the journal, not in the cluster", topic, p, off)
			}
		}
	}
	sort.Strings(missing)
	return journaled, missing
}

// sameBatch compares a batch as the client sent it with the broker's copy:
// the broker rewrites FirstOffset and PartitionLeaderEpoch, nothing else.
func sameBatch(client, broker []byte) bool {
	return len(client) == len(broker) && bytes.Equal(client[8:12], broker[8:12]) && bytes.Equal(client[16:], broker[16:])
}

func coverage(t *testing.T, j *archive.Journal, topic string) map[int32]archive.PartitionCoverage {
	t.Helper()
	cov, err := j.Coverage()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]archive.PartitionCoverage{}
	for _, c := range cov {
		if c.Topic == topic {
			out[c.Partition] = c
		}
	}
	return out
}

// TestTeeJournalsWhatTheBrokerStored produces with every codec, null keys
// and values, duplicate header keys and 1 MB records, in both durability
// modes: the journal must hold exactly the cluster's batches at the
// cluster's offsets, with no holes.
func TestTeeJournalsWhatTheBrokerStored(t *testing.T) {
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for _, d := range []archive.Durability{archive.Sync, archive.Async} {
		t.Run(d.String(), func(t *testing.T) {
			e := startTeed(t, d, kfake.SeedTopics(3, "none", "gzip", "snappy", "lz4", "zstd", "big"))
			for name, codec := range codecs {
				cl := e.client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(name))
				var rs []*kgo.Record
				for i := 0; i < 300; i++ {
					r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{byte(i)}, i),
						Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "h", Value: nil}}}
					if i%7 == 0 {
						r.Key = nil
					}
					if i%11 == 0 {
						r.Value = nil
					}
					rs = append(rs, r)
				}
				if err := cl.ProduceSync(ctx(t), rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			big := e.client(t, kgo.DefaultProduceTopic("big"), kgo.ProducerBatchMaxBytes(4<<20))
			for i := 0; i < 5; i++ {
				if err := big.ProduceSync(ctx(t), &kgo.Record{Value: bytes.Repeat([]byte{'x'}, 1<<20)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if d == archive.Async {
				e.j.Commit() // what the async responses did not wait for
			}
			for _, topic := range []string{"none", "gzip", "snappy", "lz4", "zstd", "big"} {
				if n := assertJournalMatchesCluster(t, e, topic, 3); n == 0 {
					t.Errorf("%s: nothing journaled", topic)
				}
				for p, c := range coverage(t, e.j, topic) {
					if len(c.Holes) != 0 {
						t.Errorf("%s/%d: holes %v", topic, p, c.Holes)
					}
				}
			}
		})
	}
}

// TestTeeTransactionsLeaveMarkerHoles: a committed and an aborted
// transaction are journaled as the client sent them; the transaction
// markers, which only brokers write, are the only holes; the EndTxn
// outcomes are journaled as events.
func TestTeeTransactionsLeaveMarkerHoles(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "tx"))
	cl := e.client(t, kgo.TransactionalID("t1"), kgo.DefaultProduceTopic("tx"))
	for _, commit := range []bool{true, false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	e.j.Commit()
	if n := assertJournalMatchesCluster(t, e, "tx", 1); n != 3 {
		t.Errorf("journaled %d transactional batches, want 3", n)
	}
	c := coverage(t, e.j, "tx")[0]
	// Each transaction: 2 records, then a marker. The last marker is past
	// the end of what clients produced, so two holes of one offset each.
	if want := [][2]int64{{2, 3}, {5, 6}}; fmt.Sprint(c.Holes) != fmt.Sprint(want) {
		t.Errorf("holes %v, want the markers %v", c.Holes, want)
	}
	var outcomes []bool
	e.j.Events(func(ev *archive.Event) error {
		if ev.Kind == archive.KindEndTxn {
			outcomes = append(outcomes, bytes.Contains(ev.Body, []byte(`"commit":true`)))
		}
		return nil
	})
	if fmt.Sprint(outcomes) != "[true false true]" {
		t.Errorf("EndTxn events %v, want [true false true]", outcomes)
	}
}

// TestTeeRetriedBatchStoredOnce: the broker appends the first produce
// requests but answers REQUEST_TIMED_OUT; the idempotent producer retries
// and the broker acknowledges the retries as duplicates at the original
// offsets. Failed answers journal nothing; each batch is journaled once.
func TestTeeRetriedBatchStoredOnce(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "idem"))
	faults := e.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "idem", Err: kerr.RequestTimedOut, Count: 2})
	cl := e.client(t, kgo.DefaultProduceTopic("idem"))
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if faults.Hits() != 2 {
		t.Fatalf("fault hits %d, want 2", faults.Hits())
	}
	if n := assertJournalMatchesCluster(t, e, "idem", 1); n != 5 {
		t.Errorf("journaled %d batches, want 5", n)
	}
	if s := e.tee.Stats(); s.FailedBatches != 2 {
		t.Errorf("failed batches %d, want 2 (the timed-out answers)", s.FailedBatches)
	}
}

// TestTeeLogAppendTime: for a LogAppendTime topic the broker's append time
// from the produce response is journaled. kfake does not enforce
// LogAppendTime, so a control answers the produce as such a broker would
// (it appends nothing: only the journal is checked).
func TestTeeLogAppendTime(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "lat"))
	const appendTime = 1700000000123
	e.c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		e.c.KeepControl()
		req := r.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.BaseOffset, sp.LogAppendTime = rp.Partition, 42, appendTime
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	cl := e.client(t, kgo.DefaultProduceTopic("lat"))
	if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []string
	e.j.Batches(func(b *archive.Batch) error {
		got = append(got, fmt.Sprintf("%d@%d", b.LogAppendTime, b.BaseOffset))
		return nil
	})
	if want := fmt.Sprintf("[%d@42]", appendTime); fmt.Sprint(got) != want {
		t.Fatalf("journaled %v, want %s", got, want)
	}
}

// TestTeeAdminAndCommitHistory: commits and admin changes through the
// proxy are journaled as events, with the client id: the trail that says
// who set a topic's retention to one day.
func TestTeeAdminAndCommitHistory(t *testing.T) {
	e := startTeed(t, archive.Sync)
	cl := e.client(t, kgo.ClientID("ops-laptop"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	c := ctx(t)
	if _, err := adm.CreateTopic(c, 2, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(c, &kgo.Record{Topic: "orders", Value: []byte("v")}, &kgo.Record{Topic: "orders", Value: []byte("w")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(c, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreatePartitions(c, 1, "orders"); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(c, "billing", offs); err != nil {
		t.Fatal(err)
	}
	if rs, err := adm.DeleteRecords(c, kadm.Offsets{"orders": {0: {Topic: "orders", Partition: 0, At: 1}}}); err != nil || rs.Error() != nil {
		t.Fatal(err, rs.Error())
	}
	if _, err := adm.DeleteGroups(c, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(c, "orders"); err != nil {
		t.Fatal(err)
	}
	e.j.Commit()
	kinds := map[string]string{}
	e.j.Events(func(ev *archive.Event) error {
		if ev.ClientID != "ops-laptop" {
			t.Errorf("%s: client id %q", ev.Kind, ev.ClientID)
		}
		kinds[ev.Kind] += string(ev.Body)
		return nil
	})
	for kind, want := range map[string]string{
		archive.KindCreateTopics:            `"partitions":2,"replication_factor":1,"configs":[{"name":"cleanup.policy","value":"delete"}]`,
		archive.KindIncrementalAlterConfigs: `"name":"retention.ms","value":"86400000","op":"set"`,
		archive.KindCreatePartitions:        `"topic":"orders","count":3`,
		archive.KindOffsetCommit:            `"group":"billing","topic":"orders","partition":0,"offset":1`,
		archive.KindDeleteRecords:           `"topic":"orders","partition":0,"offset":1,"low_watermark":1`,
		archive.KindDeleteGroups:            `"group":"billing"`,
		archive.KindDeleteTopics:            `"topic":"orders"`,
	} {
		if !bytes.Contains([]byte(kinds[kind]), []byte(want)) {
			t.Errorf("%s: journaled %q, want it to contain %q", kind, kinds[kind], want)
		}
	}
}

// TestTeeAcksZeroCountedNotInvented: acks=0 batches get no response and so
// no offsets: the tee counts them and journals nothing for them.
func TestTeeAcksZeroCountedNotInvented(t *testing.T) {
	e := startTeed(t, archive.Sync, kfake.SeedTopics(1, "fire"))
	cl := e.client(t, kgo.DefaultProduceTopic("fire"), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// acks=0 "succeeds" once written to the socket: wait for the proxy.
	deadline := time.Now().Add(10 * time.Second)
	for e.tee.Stats().AcksZeroBatches < 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := e.tee.Stats(); s.AcksZeroBatches != 10 || s.Batches != 0 {
		t.Errorf("acks=0: %+v, want 10 acks0 batches counted and none journaled", s)
	}
	e.j.Commit()
	if cov := coverage(t, e.j, "fire"); len(cov) != 0 {
		t.Errorf("acks=0 batches journaled: %+v", cov)
	}
}

// TestTeeCompactedTopic: the journal keeps every batch as produced, even
// after the broker compacts the topic away.
func TestTeeCompactedTopic(t *testing.T) {
	e := startTeed(t, archive.Sync)
	cl := e.client(t, kgo.DefaultProduceTopic("compacted"))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "compacted"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.c.Compact()
	c := coverage(t, e.j, "compacted")[0]
	if c.StartOffset != 0 || c.EndOffset != 30 || c.Records != 30 || len(c.Holes) != 0 {
		t.Errorf("coverage after compaction: %+v, want all 30 records", c)
	}
}

// recordBatch is a one-record v2 batch holding value.
func recordBatch(value string) []byte { return testkit.RecordBatch([]byte("k"), []byte(value)) }
