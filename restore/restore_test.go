package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/restore"
)

// env is a source cluster behind a teeing proxy, its archive in memory,
// and an empty target cluster.
type env struct {
	*testkit.Teed
	dst   *kfake.Cluster
	dstCl *kgo.Client
}

func newEnv(t *testing.T, kopts ...kfake.Opt) *env {
	t.Helper()
	e := &env{Teed: testkit.NewTeed(t, kopts...), dst: testkit.NewCluster(t)}
	var err error
	if e.dstCl, err = kgo.NewClient(kgo.SeedBrokers(e.dst.ListenAddrs()...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dstCl.Close)
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) client(t *testing.T, opts ...kgo.Opt) *kgo.Client { return e.Client(t, opts...) }

func (e *env) archive(t *testing.T) *archive.Archive { return e.Archive(t) }

func (e *env) restore(t *testing.T, o restore.Options, topics ...string) (*restore.Report, error) {
	t.Helper()
	o.Archive = e.archive(t)
	o.Client = e.dstCl
	if o.UntilOffset == 0 {
		o.UntilOffset = -1
	}
	if o.Partition == 0 && o.UntilOffset < 0 {
		o.Partition = -1
	}
	for _, s := range topics {
		o.Topics = append(o.Topics, restore.MustTopicMapping(s))
	}
	return restore.Run(ctx(t), o)
}

// rec is what a consumer sees of a record.
type rec struct {
	Partition int32
	Key       string
	NilKey    bool
	Value     string
	NilValue  bool
	Headers   string
	Timestamp int64
}

func (r rec) String() string {
	return fmt.Sprintf("p%d %q/%v %q/%v %s @%d", r.Partition, r.Key, r.NilKey, r.Value, r.NilValue, r.Headers, r.Timestamp)
}

// consume reads a topic's committed records from addrs, per partition in
// order.
func consume(t *testing.T, addrs []string, topic string) []rec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []rec
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(left) > 0 {
		fs := cl.PollFetches(c)
		if c.Err() != nil {
			break // partitions ending in markers or aborted data never "reach" their end
		}
		fs.EachRecord(func(r *kgo.Record) {
			var hs bytes.Buffer
			for _, h := range r.Headers {
				fmt.Fprintf(&hs, "%s=%q;", h.Key, h.Value)
			}
			out = append(out, rec{r.Partition, string(r.Key), r.Key == nil, string(r.Value), r.Value == nil, hs.String(), r.Timestamp.UnixMilli()})
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

func sameRecords(t *testing.T, what string, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d\n got %v\nwant %v", what, i, got[i], want[i])
		}
	}
}

// shapes produces every record shape with every codec into topic.
func shapes(t *testing.T, e *env, topic string) {
	t.Helper()
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	for ci, codec := range codecs {
		cl := e.client(t, kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(4<<20))
		var rs []*kgo.Record
		for i := 0; i < 40; i++ {
			r := &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d-%d", ci, i), Value: fmt.Appendf(nil, "v%d", i),
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(ci*1000+i))}
			switch i % 5 {
			case 0:
				r.Key = nil
			case 1:
				r.Value = nil
			case 2:
				r.Value = []byte{}
			case 3:
				r.Headers = []kgo.RecordHeader{{Key: "dup", Value: []byte("a")}, {Key: "dup", Value: nil}, {Key: "x", Value: []byte{}}}
			}
			rs = append(rs, r)
		}
		if ci == 0 {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Value: bytes.Repeat([]byte("m"), 1000*1000)})
		}
		if err := cl.ProduceSync(ctx(t), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreExact: every record shape, every codec, a 1 MB value, through
// an idempotent producer, restored under a new name: the target's records
// equal the source's, partition by partition, in order, timestamps
// included; batches are replayed whole, none re-encoded.
func TestRestoreExact(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(3, "orders"))
	shapes(t, e, "orders")
	rep, err := e.restore(t, restore.Options{}, "orders:orders-restored")
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "restored", consume(t, e.dst.ListenAddrs(), "orders-restored"), consume(t, e.Cluster.ListenAddrs(), "orders"))
	for _, p := range rep.Topics[0].Partitions {
		if p.Reencoded != 0 {
			t.Errorf("partition %d: %d batches re-encoded; nothing needed changing", p.Partition, p.Reencoded)
		}
	}
	if !rep.Topics[0].Created {
		t.Error("target topic not reported created")
	}
}

// TestRestorePatternRename restores topics matched by a pattern under
// expanded names.
func TestRestorePatternRename(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "orders.eu", "orders.us", "clicks"))
	cl := e.client(t)
	for _, tp := range []string{"orders.eu", "orders.us", "clicks"} {
		cl.ProduceSync(ctx(t), &kgo.Record{Topic: tp, Value: []byte(tp)})
	}
	rep, err := e.restore(t, restore.Options{}, `orders\.(.*):restored-$1`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range rep.Topics {
		got = append(got, tr.Source+"->"+tr.Target)
	}
	if fmt.Sprint(got) != "[orders.eu->restored-eu orders.us->restored-us]" {
		t.Fatalf("mapped %v", got)
	}
}

// TestRestoreUntilAckTime: records acknowledged after the cut are not
// restored.
func TestRestoreUntilAckTime(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "t"))
	cl := e.client(t)
	for i := 0; i < 5; i++ {
		cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "before-%d", i)})
	}
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	for i := 0; i < 5; i++ {
		cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "after-%d", i)})
	}
	rep, err := e.restore(t, restore.Options{Until: cut}, "t:t2")
	if err != nil {
		t.Fatal(err)
	}
	got := consume(t, e.dst.ListenAddrs(), "t2")
	if len(got) != 5 || got[4].Value != "before-4" {
		t.Fatalf("restored %v", got)
	}
	if n := rep.Topics[0].Partitions[0].Skipped["after_until"]; n != 5 {
		t.Errorf("skipped after the cut: %d, want 5", n)
	}
}

// TestRestoreUntilOffset cuts one partition inside a batch: the batch is
// split, the rest of it not restored.
func TestRestoreUntilOffset(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(2, "t"))
	cl := e.client(t)
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: "t", Partition: 1, Value: fmt.Appendf(nil, "v%d", i)})
	}
	cl.ProduceSync(ctx(t), rs...) // one batch of 10
	rep, err := e.restore(t, restore.Options{UntilOffset: 7, Partition: 1}, "t:cut")
	if err != nil {
		t.Fatal(err)
	}
	got := consume(t, e.dst.ListenAddrs(), "cut")
	if len(got) != 7 || got[6].Value != "v6" {
		t.Fatalf("restored %v", got)
	}
	if p := rep.Topics[0].Partitions[0]; p.Reencoded != 1 {
		t.Errorf("re-encoded %d batches, want the 1 split", p.Reencoded)
	}
}

// TestRestoreTransactions: a transaction committed before the cut is
// restored, an aborted one is not, one committed after the cut is not; no
// marker becomes a record.
func TestRestoreTransactions(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "tx"))
	cl := e.client(t, kgo.TransactionalID("restore-txn"))
	txn := func(value string, commit bool) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "tx", Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	plain := e.client(t)
	txn("committed-early", true)
	txn("aborted", false)
	plain.ProduceSync(ctx(t), &kgo.Record{Topic: "tx", Value: []byte("plain")})
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	cl.ProduceSync(ctx(t), &kgo.Record{Topic: "tx", Value: []byte("committed-late")})
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	cl.EndTransaction(ctx(t), kgo.TryCommit)
	rep, err := e.restore(t, restore.Options{Until: cut}, "tx:tx2")
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, r := range consume(t, e.dst.ListenAddrs(), "tx2") {
		vals = append(vals, r.Value)
	}
	if fmt.Sprint(vals) != "[committed-early plain]" {
		t.Fatalf("restored %v, want [committed-early plain]", vals)
	}
	sk := rep.Topics[0].Partitions[0].Skipped
	if sk["aborted"] != 1 || sk["committed_after_until"] != 1 {
		t.Errorf("skipped %v", sk)
	}
}

// TestRestoreGroups: a consumer group's position at the cut is translated
// through the offset map, across the holes transaction markers leave in
// the source: it resumes on the target exactly at its next unconsumed
// record.
func TestRestoreGroups(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "g"))
	tx := e.client(t, kgo.TransactionalID("g-txn"))
	plain := e.client(t)
	for i := 0; i < 3; i++ { // each transaction leaves a marker: a hole in the archive
		tx.BeginTransaction()
		tx.ProduceSync(ctx(t), &kgo.Record{Topic: "g", Value: fmt.Appendf(nil, "t%d", i)})
		tx.EndTransaction(ctx(t), kgo.TryCommit)
	}
	for i := 0; i < 4; i++ {
		plain.ProduceSync(ctx(t), &kgo.Record{Topic: "g", Value: fmt.Appendf(nil, "p%d", i)})
	}
	// Source offsets: t0@0 m@1 t1@2 m@3 t2@4 m@5 p0@6 p1@7 p2@8 p3@9.
	// The group consumed through p0: committed offset 7 (next: p1).
	adm := kadm.NewClient(plain)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "g", Partition: 0, At: 7, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx(t), "billing", offs); err != nil {
		t.Fatal(err)
	}
	rep, err := e.restore(t, restore.Options{Groups: []restore.GroupMapping{{Source: "billing", Target: "billing-restored"}}}, "g:g2")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := kadm.NewClient(e.dstCl).FetchOffsets(ctx(t), "billing-restored")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := committed.Lookup("g2", 0)
	if !ok {
		t.Fatalf("no committed offset on the target; report %+v", rep.Groups)
	}
	// Target offsets: t0@0 t1@1 t2@2 p0@3 p1@4: the group resumes at p1.
	got := consume(t, e.dst.ListenAddrs(), "g2")
	if o.At != 4 || got[o.At].Value != "p1" {
		t.Fatalf("target group at %d (%v), want 4 (p1)", o.At, got)
	}
}

// TestRestoreRefusesNonEmptyTarget: a target partition holding other data
// is refused; --force appends.
func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "t"))
	e.client(t).ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte("archived")})
	if _, err := kadm.NewClient(e.dstCl).CreateTopic(ctx(t), 1, -1, nil, "busy"); err != nil {
		t.Fatal(err)
	}
	e.dstCl.ProduceSync(ctx(t), &kgo.Record{Topic: "busy", Value: []byte("someone else's")})
	if _, err := e.restore(t, restore.Options{}, "t:busy"); !errors.Is(err, restore.ErrTargetNotEmpty) {
		t.Fatalf("restore into a busy topic: %v", err)
	}
	if _, err := e.restore(t, restore.Options{Force: true}, "t:busy"); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if got := consume(t, e.dst.ListenAddrs(), "busy"); len(got) != 2 || got[1].Value != "archived" {
		t.Fatalf("after --force: %v", got)
	}
}

// TestRestoreResumes: a restore cut off midway, run again, continues where
// it stopped: nothing twice, nothing missing.
func TestRestoreResumes(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(2, "r"))
	cl := e.client(t)
	for i := 0; i < 200; i++ {
		cl.ProduceSync(ctx(t), &kgo.Record{Topic: "r", Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)})
	}
	a := e.archive(t)
	c, cancel := context.WithCancel(context.Background())
	var written int64
	_, err := restore.Run(c, restore.Options{Archive: a, Client: e.dstCl, Topics: []restore.TopicMapping{restore.MustTopicMapping("r:r2")},
		UntilOffset: -1, Partition: -1, Parallelism: 1,
		Progress: func(_, n int64) {
			if written += n; written >= 60 {
				cancel()
			}
		}})
	cancel()
	if err == nil {
		t.Fatal("the interrupted restore reported success")
	}
	part := consume(t, e.dst.ListenAddrs(), "r2")
	if len(part) == 0 || len(part) >= 200 {
		t.Fatalf("the interrupted restore wrote %d records; the test needs a partial one", len(part))
	}
	rep, err := e.restore(t, restore.Options{}, "r:r2")
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	sameRecords(t, "resumed", consume(t, e.dst.ListenAddrs(), "r2"), consume(t, e.Cluster.ListenAddrs(), "r"))
	resumed := 0
	for _, p := range rep.Topics[0].Partitions {
		if p.Resumed > 0 {
			resumed++
		}
	}
	if resumed == 0 {
		t.Error("no partition reported as resumed")
	}
}

// TestRestoreDryRunWritesNothing plans without writing.
func TestRestoreDryRunWritesNothing(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "d"))
	e.client(t).ProduceSync(ctx(t), &kgo.Record{Topic: "d", Value: []byte("v")}, &kgo.Record{Topic: "d", Value: []byte("w")})
	rep, err := e.restore(t, restore.Options{DryRun: true}, "d:d2")
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Topics[0].Partitions[0]; p.Records != 2 || len(p.OffsetMap) != 1 {
		t.Errorf("plan %+v", p)
	}
	topics, _ := kadm.NewClient(e.dstCl).ListTopics(ctx(t))
	if topics.Has("d2") {
		t.Error("a dry run created the target topic")
	}
}

// TestRestoreLogAppendTimeAndOffsetHeader: a LogAppendTime source's
// archived append time becomes each record's timestamp; --offset-header
// adds each record's source offset. Both re-encode, and the report says
// the topic used LogAppendTime.
func TestRestoreLogAppendTimeAndOffsetHeader(t *testing.T) {
	e := newEnv(t)
	cl := e.client(t)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx(t), 1, -1, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")}, "lat"); err != nil {
		t.Fatal(err)
	}
	// kfake does not stamp LogAppendTime; journal what a broker would have
	// answered, as the tee does from a real produce response.
	const appendTime = 1_700_000_123_456
	var batches []archive.Batch
	for i := int64(0); i < 3; i++ {
		batches = append(batches, archive.Batch{Topic: "lat", Partition: 0, BaseOffset: i, AckTime: time.Now(), LogAppendTime: appendTime + i,
			Data: testkit.RecordBatch([]byte("k"), fmt.Appendf(nil, "v%d", i))})
	}
	e.Journal.Append(batches, nil)
	rep, err := e.restore(t, restore.Options{OffsetHeader: "amber-offset"}, "lat:lat2")
	if err != nil {
		t.Fatal(err)
	}
	got := consume(t, e.dst.ListenAddrs(), "lat2")
	if len(got) != 3 {
		t.Fatalf("restored %v", got)
	}
	for i, r := range got {
		if r.Timestamp != appendTime+int64(i) {
			t.Errorf("record %d timestamp %d, want the append time %d", i, r.Timestamp, appendTime+int64(i))
		}
		if want := fmt.Sprintf("amber-offset=%q;", string([]byte{0, 0, 0, 0, 0, 0, 0, byte(i)})); r.Headers != want {
			t.Errorf("record %d headers %s, want %s", i, r.Headers, want)
		}
	}
	if tr := rep.Topics[0]; !tr.LogAppendTime || tr.Configs["message.timestamp.type"] != "" || tr.Partitions[0].Reencoded != 3 {
		t.Errorf("report %+v", tr)
	}
}

// TestRestoreRefusesActiveGroup: group offsets are not moved under a group
// with live members; the error says what to do.
func TestRestoreRefusesActiveGroup(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "a"))
	plain := e.client(t)
	plain.ProduceSync(ctx(t), &kgo.Record{Topic: "a", Value: []byte("v")})
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "a", Partition: 0, At: 1, LeaderEpoch: -1})
	kadm.NewClient(plain).CommitOffsets(ctx(t), "live", offs)
	if _, err := kadm.NewClient(e.dstCl).CreateTopic(ctx(t), 1, -1, nil, "a2"); err != nil {
		t.Fatal(err)
	}
	member, err := kgo.NewClient(kgo.SeedBrokers(e.dst.ListenAddrs()...), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("a2"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	c, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	go func() { // a group is joined while polling
		for c.Err() == nil {
			member.PollFetches(c)
		}
	}()
	for {
		d, err := kadm.NewClient(e.dstCl).DescribeGroups(c, "live")
		if err == nil && len(d["live"].Members) > 0 {
			break
		}
		select {
		case <-c.Done():
			t.Fatal("the consumer never joined its group")
		case <-time.After(50 * time.Millisecond):
		}
	}
	_, err = e.restore(t, restore.Options{Groups: []restore.GroupMapping{{Source: "live", Target: "live"}}}, "a:a2")
	if !errors.Is(err, restore.ErrGroupActive) {
		t.Fatalf("restore under a live group: %v", err)
	}
}

// TestRestoreRecreatedTopic: a topic deleted and created again through
// the proxy holds two topics of one name in the archive, their offsets
// overlapping. A restore up to a moment after the re-creation takes the
// re-created topic only (and its group positions); one up to a moment
// before the deletion takes the old one.
func TestRestoreRecreatedTopic(t *testing.T) {
	e := newEnv(t)
	cl := e.client(t)
	adm := kadm.NewClient(cl)
	commit := func(cl *kgo.Client, at int64) {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := kadm.NewClient(cl).CommitOffsets(ctx(t), "billing", offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.CreateTopic(ctx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "old-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit(cl, 8)
	if _, err := adm.AlterTopicConfigs(ctx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, "t"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	beforeDelete := time.Now()
	time.Sleep(5 * time.Millisecond)
	testkit.RecreateTopic(t, cl, "t")
	cl2 := e.client(t) // cl still knows the deleted topic's id
	for i := range 5 {
		if err := cl2.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "new-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit(cl2, 3)
	rep, err := e.restore(t, restore.Options{Groups: []restore.GroupMapping{{Source: "billing", Target: "billing-new"}}}, "t:t-new")
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, r := range consume(t, e.dst.ListenAddrs(), "t-new") {
		vals = append(vals, r.Value)
	}
	if fmt.Sprint(vals) != "[new-0 new-1 new-2 new-3 new-4]" {
		t.Errorf("restore of the re-created topic: %v", vals)
	}
	if _, ok := rep.Topics[0].Configs["retention.ms"]; ok {
		t.Errorf("the re-created topic got the deleted one's retention: %v", rep.Topics[0].Configs)
	}
	if len(rep.Topics) != 1 || !strings.Contains(strings.Join(rep.Topics[0].Notes, " "), "deleted at") {
		t.Errorf("the report does not say the topic was re-created: %+v", rep.Topics)
	}
	committed, err := kadm.NewClient(e.dstCl).FetchOffsets(ctx(t), "billing-new")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("t-new", 0); !ok || o.At != 3 {
		t.Errorf("group on the re-created topic at %+v, want 3", o)
	}

	// The second restore goes to a new cluster: after one restore, this
	// kfake no longer lists topics created on it (a quirk not yet pinned
	// down; each amber restore is its own process and client anyway).
	e.dst = testkit.NewCluster(t)
	dstCl, err := kgo.NewClient(kgo.SeedBrokers(e.dst.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dstCl.Close)
	e.dstCl = dstCl
	rep, err = e.restore(t, restore.Options{Until: beforeDelete, Groups: []restore.GroupMapping{{Source: "billing", Target: "billing-old"}}}, "t:t-old")
	if err != nil {
		t.Fatalf("%v: %+v", err, rep)
	}
	if rep.Topics[0].Configs["retention.ms"] != "86400000" {
		t.Errorf("the deleted topic restored without its retention: %v", rep.Topics[0].Configs)
	}
	vals = nil
	for _, r := range consume(t, e.dst.ListenAddrs(), "t-old") {
		vals = append(vals, r.Value)
	}
	if len(vals) != 10 || vals[0] != "old-0" || vals[9] != "old-9" {
		t.Errorf("restore of the deleted topic: %v", vals)
	}
	committed, err = kadm.NewClient(e.dstCl).FetchOffsets(ctx(t), "billing-old")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("t-old", 0); !ok || o.At != 8 {
		t.Errorf("group on the deleted topic at %+v, want 8", o)
	}
}

// TestRestoreTopicRecreatedAroundTheProxy: the topic is deleted and created
// again straight on the brokers. The proxy learns it from the new topic id
// in the metadata its clients fetch, journals the deletion as observed,
// and a restore takes the re-created topic only (or, up to a moment
// before, the old one).
func TestRestoreTopicRecreatedAroundTheProxy(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "t"))
	cl := e.client(t)
	for i := range 6 {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "old-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	beforeDelete := time.Now()
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	testkit.RecreateTopic(t, direct, "t")
	cl2 := e.client(t) // its metadata, through the proxy, names the new id
	for i := range 3 {
		if err := cl2.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "new-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.restore(t, restore.Options{}, "t:t-new")
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, r := range consume(t, e.dst.ListenAddrs(), "t-new") {
		vals = append(vals, r.Value)
	}
	if fmt.Sprint(vals) != "[new-0 new-1 new-2]" || len(rep.Topics[0].Notes) == 0 {
		t.Errorf("restore of the topic re-created around the proxy: %v, notes %q", vals, rep.Topics[0].Notes)
	}
	e.dst = testkit.NewCluster(t) // see TestRestoreRecreatedTopic
	if e.dstCl, err = kgo.NewClient(kgo.SeedBrokers(e.dst.ListenAddrs()...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dstCl.Close)
	if _, err := e.restore(t, restore.Options{Until: beforeDelete}, "t:t-old"); err != nil {
		t.Fatal(err)
	}
	vals = nil
	for _, r := range consume(t, e.dst.ListenAddrs(), "t-old") {
		vals = append(vals, r.Value)
	}
	if len(vals) != 6 || vals[0] != "old-0" {
		t.Errorf("restore of the old topic: %v", vals)
	}
}

// TestRestoreGroupFromSnapshot: a group that commits straight to the
// brokers, never through the proxy, is known to the archive only from a
// backfill's snapshot of group offsets; the restore moves it from that.
// A commit through the proxy after the snapshot wins over it.
func TestRestoreGroupFromSnapshot(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "s"))
	cl := e.client(t)
	for i := range 10 {
		if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "s", Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	commit := func(cl *kgo.Client, group string, at int64) {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "s", Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := kadm.NewClient(cl).CommitOffsets(ctx(t), group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(direct, "outside", 6) // around the proxy
	commit(direct, "both", 2)
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: direct, Sink: &archive.JournalSink{Journal: e.Journal},
		Store: e.Store, Journal: e.Journal, Topics: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := b.Step(ctx(t)); err != nil || rep.GroupSnapshots == 0 {
		t.Fatalf("backfill: %v, %+v", err, rep)
	}
	time.Sleep(5 * time.Millisecond)
	commit(cl, "both", 8) // through the proxy, after the snapshot

	rep, err := e.restore(t, restore.Options{Groups: []restore.GroupMapping{{Source: "outside", Target: "outside-r"}, {Source: "both", Target: "both-r"}}}, "s:s2")
	if err != nil {
		t.Fatal(err)
	}
	for group, want := range map[string]int64{"outside-r": 6, "both-r": 8} {
		committed, err := kadm.NewClient(e.dstCl).FetchOffsets(ctx(t), group)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := committed.Lookup("s2", 0); !ok || o.At != want {
			t.Errorf("%s at %+v, want %d; report %+v", group, o, want, rep.Groups)
		}
	}
}

// TestRestoreReportsWhatIsMissing: the report names the source offsets the
// restore could not write: a known loss (deleted on the cluster before a
// backfill fetched it) and a hole (produced around the proxy, not yet
// backfilled).
func TestRestoreReportsWhatIsMissing(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "m"))
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...), kgo.DefaultProduceTopic("m"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	produce := func(cl *kgo.Client, n int) {
		for range n {
			if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "m", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(direct, 5) // 0-4, around the proxy
	if err := e.Cluster.DeleteRecords("m", 0, 3); err != nil {
		t.Fatal(err)
	}
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: direct, Sink: &archive.JournalSink{Journal: e.Journal},
		Store: e.Store, Journal: e.Journal, Topics: []string{"m"}, NoSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Step(ctx(t)); err != nil { // [0,3) known loss, 3-4 fetched
		t.Fatal(err)
	}
	cl := e.client(t)
	produce(cl, 5)     // 5-9
	produce(direct, 3) // 10-12: a hole
	produce(cl, 2)     // 13-14
	rep, err := e.restore(t, restore.Options{}, "m:m2")
	if err != nil {
		t.Fatal(err)
	}
	pr := rep.Topics[0].Partitions[0]
	if got := fmt.Sprint(pr.Missing); got != "[{0 3 deleted} {10 13 hole}]" || pr.Records != 9 { // 3-4, 5-9, 13-14
		t.Errorf("restored %d records, missing %s", pr.Records, got)
	}
}
