// Package e2e holds Amber's end-to-end tests: real client libraries talking
// to kfake clusters through the proxy.
package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/testkit"
)

const (
	extRecords    = 100
	extPartitions = 3
)

// extCase is one client run: a codec, optionally with an idempotent or
// transactional producer.
type extCase struct {
	name          string
	codec         string
	idempotent    bool
	transactional bool
}

func extCases(f testkit.ClientFeatures) []extCase {
	var cs []extCase
	for _, codec := range f.Codecs {
		cs = append(cs, extCase{name: codec, codec: codec})
	}
	if f.Idempotent {
		cs = append(cs, extCase{name: "idempotent-snappy", codec: "snappy", idempotent: true})
	}
	if f.Transactional {
		cs = append(cs, extCase{name: "transactional-zstd", codec: "zstd", transactional: true})
	}
	return cs
}

// TestExternalClients runs every non-Go client library through the proxy:
// the client produces records with distinct keys, values and headers, then
// consumes them back in a consumer group and commits; franz-go then checks
// the topic, what the client consumed, and the group's committed offsets.
func TestExternalClients(t *testing.T) {
	for _, client := range testkit.AllClients {
		t.Run(string(client), func(t *testing.T) {
			tool := testkit.RequireClient(t, client)
			for _, tc := range extCases(client.Features()) {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					runExtCase(t, tool, tc)
				})
			}
		})
	}
}

func runExtCase(t *testing.T, tool *testkit.ClientTool, tc extCase) {
	client := tool.Client
	feat := client.Features()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := testkit.ProxiedCluster(t)
	batches := extObserveProduceBatches(p.Cluster)

	topic := fmt.Sprintf("e2e-%s-%s", client, tc.name)
	group := topic + "-group"
	adm := extNewAdmin(t, p.Bootstrap)
	created, err := adm.CreateTopic(ctx, extPartitions, -1, nil, topic)
	if err != nil {
		t.Fatalf("create topic %s through the proxy: %v", topic, err)
	}
	batches.track(topic, created.ID)

	records := extMakeRecords(client, extRecords, feat.HeaderRuns)
	spec := testkit.ClientSpec{
		Bootstrap:     p.Bootstrap,
		Topic:         topic,
		Group:         group,
		Compression:   tc.codec,
		Idempotent:    tc.idempotent,
		Transactional: tc.transactional,
		Records:       records,
		Timeout:       20 * time.Second,
	}
	start := time.Now()
	res, err := tool.Run(ctx, spec)
	if err != nil {
		t.Fatalf("%s %s failed after %v: %v", client, tc.name, time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("%s %s: produced and consumed %d records in %v", res.Client, res.Version, len(res.Consumed), res.Elapsed.Round(time.Millisecond))

	// 1. The topic holds exactly the records produced, nothing else.
	log := extReadTopic(ctx, t, p.Bootstrap, adm, topic)
	stored := extCheckTopic(t, log, records, tc)

	// 2. The broker received batches compressed with the codec the client
	// should have used.
	codec := extExpectedCodec(ctx, t, adm, client, tc.codec)
	extCheckBatches(t, batches, topic, tc, codec)

	// 3. The client consumed exactly the stored records.
	extCheckConsumed(t, res.Consumed, stored)

	// 4. The producer's acknowledgements point at the stored records.
	extCheckDelivered(t, res.Delivered, stored, log, feat.DeliveryKeys, len(records))

	// 5. The group committed every partition up to its end offset and left.
	extCheckCommitted(ctx, t, adm, group, topic, log)
}

// extMakeRecords builds n records with distinct keys, values (with non-ASCII
// text, compressible so every codec actually compresses) and headers,
// including a duplicated header key whose duplicates are adjacent (KafkaJS
// keeps headers in an object, see kafkajs.js). With headerRuns (kcat) the
// headers change every quarter of the records instead of every record.
func extMakeRecords(client testkit.Client, n int, headerRuns bool) []testkit.ClientRecord {
	rs := make([]testkit.ClientRecord, n)
	for i := range rs {
		id := fmt.Sprint(i)
		if headerRuns {
			id = fmt.Sprintf("run%d", i*4/n)
		}
		rs[i] = testkit.ClientRecord{
			Key:   fmt.Sprintf("key-%04d", i),
			Value: fmt.Sprintf("value %04d from %s: ", i, client) + strings.Repeat("amber ∅ proxy · ", 3+i%7),
			Headers: []testkit.Header{
				{Key: "idx", Value: id},
				{Key: "dup", Value: "first-" + id},
				{Key: "dup", Value: "second-" + id},
				{Key: "client", Value: string(client) + " ✓"},
			},
		}
	}
	return rs
}

func extNewAdmin(t *testing.T, bootstrap string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatalf("franz-go client for %s: %v", bootstrap, err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// extTopicLog is everything in a topic, control records included, per
// partition in offset order, plus each partition's end offset.
type extTopicLog struct {
	parts map[int32][]*kgo.Record
	ends  map[int32]int64
}

// extReadTopic reads every offset of every partition of topic through
// bootstrap, control records included, until each partition's end offset.
func extReadTopic(ctx context.Context, t *testing.T, bootstrap string, adm *kadm.Client, topic string) *extTopicLog {
	t.Helper()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	log := &extTopicLog{parts: map[int32][]*kgo.Record{}, ends: map[int32]int64{}}
	listed.Each(func(o kadm.ListedOffset) { log.ends[o.Partition] = o.Offset })
	if len(log.ends) != extPartitions {
		t.Fatalf("topic %s has end offsets for %d partitions, want %d: %v", topic, len(log.ends), extPartitions, log.ends)
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	next := map[int32]int64{}
	done := func() bool {
		for p, end := range log.ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("reading %s back: read up to %v of end offsets %v before the deadline", topic, next, log.ends)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s[%d]: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			log.parts[r.Partition] = append(log.parts[r.Partition], r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return log
}

// extCheckTopic checks that the topic holds each wanted record exactly once with
// its exact key, value and headers, that every offset up to the end offset
// holds a record, and that control records are only the commit markers of a
// transactional run. It returns the stored data records by key.
func extCheckTopic(t *testing.T, log *extTopicLog, want []testkit.ClientRecord, tc extCase) map[string]*kgo.Record {
	t.Helper()
	stored := map[string]*kgo.Record{}
	for p, rs := range log.parts {
		for i, r := range rs {
			if r.Offset != int64(i) {
				t.Errorf("partition %d: record #%d has offset %d: offsets are not contiguous from 0", p, i, r.Offset)
			}
			if r.Attrs.IsControl() {
				if !tc.transactional {
					t.Errorf("partition %d offset %d: unexpected control record in a non-transactional run", p, r.Offset)
				} else if len(r.Key) < 4 || binary.BigEndian.Uint16(r.Key[2:4]) != 1 {
					t.Errorf("partition %d offset %d: control record %x is not a COMMIT marker", p, r.Offset, r.Key)
				}
				continue
			}
			if tc.transactional && !r.Attrs.IsTransactional() {
				t.Errorf("partition %d offset %d: record %q not in a transactional batch", p, r.Offset, r.Key)
			}
			if (tc.idempotent || tc.transactional) && r.ProducerID < 0 {
				t.Errorf("partition %d offset %d: record %q has no producer ID (not idempotent)", p, r.Offset, r.Key)
			}
			if prev, dup := stored[string(r.Key)]; dup {
				t.Errorf("key %q stored twice: %d/%d and %d/%d", r.Key, prev.Partition, prev.Offset, p, r.Offset)
			}
			stored[string(r.Key)] = r
		}
		if n := int64(len(rs)); n != log.ends[p] {
			t.Errorf("partition %d: read %d offsets, end offset is %d", p, n, log.ends[p])
		}
	}
	for _, w := range want {
		r, ok := stored[w.Key]
		if !ok {
			t.Errorf("record %q missing from the topic", w.Key)
			continue
		}
		if got := string(r.Value); got != w.Value {
			t.Errorf("record %q: stored value %q, want %q", w.Key, got, w.Value)
		}
		if got := extKgoHeaders(r.Headers); !slices.Equal(got, w.Headers) {
			t.Errorf("record %q: stored headers %v, want %v", w.Key, got, w.Headers)
		}
	}
	if len(stored) != len(want) {
		t.Errorf("topic holds %d data records, want %d", len(stored), len(want))
	}
	return stored
}

func extKgoHeaders(hs []kgo.RecordHeader) []testkit.Header {
	out := make([]testkit.Header, 0, len(hs))
	for _, h := range hs {
		out = append(out, testkit.Header{Key: h.Key, Value: string(h.Value)})
	}
	return out
}

func extCheckConsumed(t *testing.T, consumed []testkit.ConsumedRecord, stored map[string]*kgo.Record) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range consumed {
		if seen[c.Key] {
			t.Errorf("client consumed key %q more than once", c.Key)
			continue
		}
		seen[c.Key] = true
		r, ok := stored[c.Key]
		if !ok {
			t.Errorf("client consumed key %q (partition %d offset %d), which is not in the topic", c.Key, c.Partition, c.Offset)
			continue
		}
		if c.Partition != r.Partition || c.Offset != r.Offset {
			t.Errorf("client consumed %q at %d/%d, stored at %d/%d", c.Key, c.Partition, c.Offset, r.Partition, r.Offset)
		}
		if c.Value != string(r.Value) {
			t.Errorf("client consumed %q with value %q, stored %q", c.Key, c.Value, r.Value)
		}
		if want := extKgoHeaders(r.Headers); !slices.Equal(c.Headers, want) {
			t.Errorf("client consumed %q with headers %v, stored %v", c.Key, c.Headers, want)
		}
	}
	if len(seen) != len(stored) {
		var missing []string
		for k := range stored {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		t.Errorf("client consumed %d distinct records, topic holds %d; not consumed: %v", len(seen), len(stored), missing)
	}
}

func extCheckDelivered(t *testing.T, delivered []testkit.Delivery, stored map[string]*kgo.Record, log *extTopicLog, withKeys bool, n int) {
	t.Helper()
	if withKeys && len(delivered) != n {
		t.Errorf("producer acknowledged %d records, want %d", len(delivered), n)
	}
	for _, d := range delivered {
		rs := log.parts[d.Partition]
		if d.Offset < 0 || d.Offset >= int64(len(rs)) || rs[d.Offset].Attrs.IsControl() {
			t.Errorf("producer acknowledged key %q at %d/%d, where the topic has no data record", d.Key, d.Partition, d.Offset)
			continue
		}
		if withKeys {
			if r := stored[d.Key]; r == nil || r.Partition != d.Partition || r.Offset != d.Offset {
				t.Errorf("producer acknowledged key %q at %d/%d, but the topic has %q there", d.Key, d.Partition, d.Offset, rs[d.Offset].Key)
			}
		}
	}
}

// extCheckCommitted checks that the group committed, for every partition, the
// partition's end offset (or, transactional runs, the offset right after the
// last record when only transaction markers follow it), and that the client
// left the group.
func extCheckCommitted(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string, log *extTopicLog) {
	t.Helper()
	offsets, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		t.Fatalf("fetch committed offsets of group %s: %v", group, err)
	}
	for p, end := range log.ends {
		o, ok := offsets.Lookup(topic, p)
		switch {
		case !ok && end == 0:
		case !ok:
			t.Errorf("group %s committed nothing for %s[%d] (end offset %d)", group, topic, p, end)
		case o.At == end:
		case o.At >= 0 && o.At < end && extOnlyMarkersFrom(log.parts[p], o.At):
			// A consumer that never saw the partition's last transaction
			// marker commits the offset after the last record; the rest
			// is markers only, so nothing was left unconsumed.
			t.Logf("group %s committed %s[%d] at %d, before trailing transaction markers up to end offset %d", group, topic, p, o.At, end)
		default:
			t.Errorf("group %s committed offset %d for %s[%d], want the end offset %d", group, o.At, topic, p, end)
		}
	}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic != topic {
			t.Errorf("group %s committed an offset for unexpected topic %s[%d]", group, o.Topic, o.Partition)
		}
	})

	described, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = described.Error()
	}
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	if g := described[group]; g.State != "Empty" || len(g.Members) != 0 {
		t.Errorf("group %s is %s with %d members after the client closed, want Empty (client left the group)", group, g.State, len(g.Members))
	}
}

// extOnlyMarkersFrom reports whether every record at offset from on is a
// control record (and there is at least one), and the record before it, if
// any, is a data record.
func extOnlyMarkersFrom(rs []*kgo.Record, from int64) bool {
	if from >= int64(len(rs)) || (from > 0 && rs[from-1].Attrs.IsControl()) {
		return false
	}
	for _, r := range rs[from:] {
		if !r.Attrs.IsControl() {
			return false
		}
	}
	return true
}

// extProduceBatches records, for the topic being tracked, the attributes of
// every record batch kfake receives in produce requests (after the proxy).
type extProduceBatches struct {
	mu      sync.Mutex
	topic   string
	topicID [16]byte
	codecs  map[int]int // compression codec -> batches
	txnal   int         // transactional batches
	idemp   int         // batches with a producer ID
	total   int
	errs    []string
}

func extObserveProduceBatches(c *kfake.Cluster) *extProduceBatches {
	b := &extProduceBatches{codecs: map[int]int{}}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.observe(req.(*kmsg.ProduceRequest))
		return nil, nil, false // observe only: kfake handles the request
	})
	return b
}

func (b *extProduceBatches) track(topic string, id [16]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topic, b.topicID = topic, id
}

func (b *extProduceBatches) observe(req *kmsg.ProduceRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rt := range req.Topics {
		if rt.Topic != b.topic && (rt.Topic != "" || rt.TopicID != b.topicID) {
			continue
		}
		for _, rp := range rt.Partitions {
			for rest := rp.Records; len(rest) > 0; {
				// v2 batch: baseOffset(8) length(4) leaderEpoch(4) magic(1)
				// crc(4) attributes(2) lastOffsetDelta(4) firstTs(8)
				// maxTs(8) producerID(8) ...
				if len(rest) < 61 {
					b.errs = append(b.errs, fmt.Sprintf("partition %d: truncated batch of %d bytes", rp.Partition, len(rest)))
					break
				}
				size := 12 + int(int32(binary.BigEndian.Uint32(rest[8:12])))
				if rest[16] != 2 || size < 61 || size > len(rest) {
					b.errs = append(b.errs, fmt.Sprintf("partition %d: bad batch (magic %d, size %d of %d bytes)", rp.Partition, rest[16], size, len(rest)))
					break
				}
				attrs := binary.BigEndian.Uint16(rest[21:23])
				b.codecs[int(attrs&0x07)]++
				if attrs&0x10 != 0 {
					b.txnal++
				}
				if int64(binary.BigEndian.Uint64(rest[43:51])) >= 0 {
					b.idemp++
				}
				b.total++
				rest = rest[size:]
			}
		}
	}
}

var extCodecIDs = map[string]int{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// extExpectedCodec returns the codec the client's batches must carry. librdkafka
// before 2.10 (kcat, confluent-kafka-python here) only uses gzip, snappy and
// lz4 if the broker's ApiVersions lists Produce v0, and zstd only if it lists
// a version <= 7; otherwise it silently sends the batch uncompressed
// (confluentinc/librdkafka#4956). Kafka 4.0 keeps advertising Produce v0-v2
// for that reason (KAFKA-18659); kfake advertises Produce 3+. So what
// librdkafka sends through the proxy depends on the Produce versions the
// proxy advertises, which we ask for here.
func extExpectedCodec(ctx context.Context, t *testing.T, adm *kadm.Client, client testkit.Client, codec string) string {
	t.Helper()
	if !client.Features().Librdkafka || codec == "none" {
		return codec
	}
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatalf("ApiVersions through the proxy: %v", err)
	}
	var minProduce, maxProduce int16 = -1, -1
	vs.Each(func(b kadm.BrokerApiVersions) {
		if b.Err != nil {
			t.Errorf("ApiVersions of broker %d through the proxy: %v", b.NodeID, b.Err)
			return
		}
		if lo, hi, ok := b.KeyVersions(int16(kmsg.Produce)); ok && (minProduce < 0 || lo > minProduce) {
			minProduce, maxProduce = lo, hi
		}
	})
	if minProduce < 0 {
		t.Fatalf("brokers behind the proxy advertise no Produce versions")
	}
	need := int16(0) // highest Produce version librdkafka requires to be advertised
	if codec == "zstd" {
		need = 7
	}
	if minProduce > need {
		t.Logf("NOTE: the proxy advertises Produce v%d-v%d; librdkafka 2.0 then sends %s batches uncompressed (librdkafka#4956, KAFKA-18659): expecting uncompressed batches", minProduce, maxProduce, codec)
		return "none"
	}
	return codec
}

func extCheckBatches(t *testing.T, b *extProduceBatches, topic string, tc extCase, codec string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("produce to %s reached kfake with %s", topic, e)
	}
	if b.total == 0 {
		t.Fatalf("kfake saw no produce batches for %s", topic)
	}
	want := extCodecIDs[codec]
	if b.codecs[want] != b.total {
		t.Errorf("kfake received %d batches for %s, codecs (id->batches) %v; want all %d with codec %s (%d)", b.total, topic, b.codecs, b.total, codec, want)
	}
	if tc.transactional && b.txnal != b.total {
		t.Errorf("kfake received %d of %d batches for %s flagged transactional, want all", b.txnal, b.total, topic)
	}
	if !tc.transactional && b.txnal != 0 {
		t.Errorf("kfake received %d transactional batches for %s in a non-transactional run", b.txnal, topic)
	}
	if (tc.idempotent || tc.transactional) && b.idemp != b.total {
		t.Errorf("kfake received %d of %d batches for %s with a producer ID, want all (idempotent producer)", b.idemp, b.total, topic)
	}
}

// TestExternalKfakeProcess proves the standalone kfake command (used by
// non-Go clients and benchmarks) works: start it, produce one record with
// franz-go and consume it back.
func TestExternalKfakeProcess(t *testing.T) {
	t.Parallel()
	k := testkit.StartKfakeProcess(t, "-brokers", "2", "-ports", "0", "-seed-topic", "smoke:2",
		"-broker-config", "log.cleaner.backoff.ms=1000")
	if len(k.Addrs) != 2 {
		t.Fatalf("kfake process listens on %v, want 2 brokers", k.Addrs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(k.Addrs[0]),
		kgo.ConsumeTopics("smoke"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	details, err := kadm.NewClient(cl).ListTopics(ctx, "smoke")
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if d := details["smoke"]; d.Err != nil || len(d.Partitions) != 2 {
		t.Fatalf("seeded topic smoke: err %v, %d partitions, want 2", d.Err, len(d.Partitions))
	}

	want := &kgo.Record{Topic: "smoke", Key: []byte("k"), Value: []byte("hello kfake"),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
	if err := cl.ProduceSync(ctx, want).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	var got []*kgo.Record
	for len(got) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record consumed before the deadline\nkfake stderr:\n%s", k.Stderr())
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got = append(got, fs.Records()...)
	}
	if len(got) != 1 || string(got[0].Key) != "k" || string(got[0].Value) != "hello kfake" ||
		len(got[0].Headers) != 1 || got[0].Headers[0].Key != "h" || string(got[0].Headers[0].Value) != "v" {
		t.Fatalf("consumed %+v, want one record k=hello kfake with header h=v", got)
	}
}
