package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/testkit"
)

// Codec ids as written in a record batch's attributes.
const (
	gcCodecNone   int8 = 0
	gcCodecGzip   int8 = 1
	gcCodecSnappy int8 = 2
	gcCodecLz4    int8 = 3
	gcCodecZstd   int8 = 4
)

// ============================== franz-go ==============================

// TestGoFranzCodecs produces with every compression codec through the
// proxy, consumes as a consumer group and commits; what comes back must be
// exactly what went in, the brokers must have seen the codec, and the
// group's commits must sit at the end offsets.
func TestGoFranzCodecs(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	codecs := gcObserveCodecs(pc)
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
		id    int8
	}{
		{"none", kgo.NoCompression(), gcCodecNone},
		{"gzip", kgo.GzipCompression(), gcCodecGzip},
		{"snappy", kgo.SnappyCompression(), gcCodecSnappy},
		{"lz4", kgo.Lz4Compression(), gcCodecLz4},
		{"zstd", kgo.ZstdCompression(), gcCodecZstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := gcContext(t)
			dr := gcNewDialRecorder()
			topic, group := "franz-"+c.name, "franz-group-"+c.name
			const partitions = 3
			gcCreateTopic(t, pc, topic, partitions)
			want := gcMakeRecords(topic, 60, partitions)

			prod := gcKgoClient(t, pc, dr, kgo.ProducerBatchCompression(c.codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			gcAssertRecords(t, "produced", gcWithOffsets(want), gcProduceKgo(ctx, t, prod, topic, want))
			codecs.assertCodec(t, topic, c.id)

			cons := gcKgoClient(t, pc, dr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
			got := gcPollKgo(ctx, t, cons, len(want))
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			gcAssertRecords(t, "consumed", gcWithOffsets(want), got)
			gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
			gcAssertOnlyProxyDialed(t, pc, dr)
		})
	}
}

// TestGoFranzIdempotent makes the brokers answer the first produce
// requests with REQUEST_TIMED_OUT after appending them (what a real broker
// does when replication is slow), so the idempotent producer retries
// batches the broker already has. Through the proxy, the retries must be
// recognised as duplicates: every record exactly once.
func TestGoFranzIdempotent(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	dr := gcNewDialRecorder()
	const topic, group, partitions = "franz-idempotent", "franz-idempotent-group", 3
	gcCreateTopic(t, pc, topic, partitions)
	timeouts := pc.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut, Count: 3})
	initPID := gcCountRequests(pc, kmsg.InitProducerID)

	want := gcMakeRecords(topic, 90, partitions)
	prod := gcKgoClient(t, pc, dr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	var got []gcRecord
	for i := 0; i < len(want); i += 30 { // several requests, so the faults hit several batches
		got = append(got, gcProduceKgo(ctx, t, prod, topic, want[i:i+30])...)
	}
	if n := timeouts.Hits(); n != 3 {
		t.Fatalf("%d produce requests were answered REQUEST_TIMED_OUT, want 3", n)
	}
	if initPID.n() == 0 {
		t.Fatalf("the producer never asked for a producer id: it was not idempotent")
	}
	gcAssertRecords(t, "produced", gcWithOffsets(want), got)

	cons := gcKgoClient(t, pc, dr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	consumed := gcPollKgo(ctx, t, cons, len(want))
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	gcAssertRecords(t, "consumed", gcWithOffsets(want), consumed)
	gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
	gcAssertOnlyProxyDialed(t, pc, dr)
}

// TestGoFranzTransactions commits one transaction, aborts the next and
// commits a third. A read_committed consumer group must see exactly the
// two committed transactions; a read_uncommitted reader sees all three
// (proving the aborted records really were written).
//
// franz-go commits "one past the last record consumed", and a transaction
// ends with a control record (the commit marker) that carries no record,
// so the group's committed offset is exactly one below each partition's
// end offset: both are checked against the offsets the broker assigned.
func TestGoFranzTransactions(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	dr := gcNewDialRecorder()
	const topic, group, partitions = "franz-txn", "franz-txn-group", 3
	gcCreateTopic(t, pc, topic, partitions)
	endTxns := gcCountRequests(pc, kmsg.EndTxn)

	prod := gcKgoClient(t, pc, dr, kgo.TransactionalID("amber-e2e-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(tag string, commit bool) []gcRecord {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin %s: %v", tag, err)
		}
		out := gcProduceKgo(ctx, t, prod, topic, gcMakeRecords(tag, 30, partitions))
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %s (commit=%v): %v", tag, commit, err)
		}
		return out
	}
	first := txn("committed-1", true)
	aborted := txn("aborted", false)
	second := txn("committed-2", true)
	if n := endTxns.n(); n != 3 {
		t.Fatalf("brokers saw %d EndTxn requests, want 3", n)
	}

	visible := append(append([]gcRecord{}, first...), second...)
	all := append(append(append([]gcRecord{}, first...), aborted...), second...)
	gcAssertRecords(t, "read_uncommitted", all, gcReadAllKgo(ctx, t, pc, dr, topic, len(all), false))

	cons := gcKgoClient(t, pc, dr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := gcPollKgo(ctx, t, cons, len(visible))
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	gcAssertRecords(t, "read_committed group", visible, got)

	// Layout per partition: committed-1, marker, aborted, marker,
	// committed-2, marker. The group sits on the last marker.
	wantCommitted, wantEnd := make(map[int32]int64), make(map[int32]int64)
	for _, r := range second {
		wantCommitted[r.Partition] = r.Offset + 1
		wantEnd[r.Partition] = r.Offset + 2
	}
	adm := gcAdmin(t, pc, dr)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	for p, want := range wantEnd {
		if o, _ := ends.Lookup(topic, p); o.Offset != want {
			t.Errorf("partition %d ends at %d, want %d (records and three markers)", p, o.Offset, want)
		}
	}
	gcAssertGroupOffsets(ctx, t, adm, group, topic, wantCommitted)
	gcAssertOnlyProxyDialed(t, pc, dr)
}

// TestGoFranzKIP848 consumes with a KIP-848 ("next-gen") consumer group:
// the broker assigns partitions via ConsumerGroupHeartbeat, no JoinGroup.
func TestGoFranzKIP848(t *testing.T) {
	t.Parallel()
	// kfake's default heartbeat interval is Kafka's 5 s; the second
	// member's assignment waits for the first member's next heartbeat.
	pc := gcCluster(t, kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "100"}))
	ctx := gcContext(t)
	dr := gcNewDialRecorder()
	const topic, group, partitions = "franz-848", "franz-848-group", 4
	gcCreateTopic(t, pc, topic, partitions)
	heartbeats, joins := gcCountRequests(pc, kmsg.ConsumerGroupHeartbeat), gcCountRequests(pc, kmsg.JoinGroup)

	want := gcMakeRecords(topic, 80, partitions)
	prod := gcKgoClient(t, pc, dr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	gcAssertRecords(t, "produced", gcWithOffsets(want), gcProduceKgo(ctx, t, prod, topic, want))

	// Two members, so the coordinator really has to split partitions.
	var mu sync.Mutex
	var got []gcRecord
	consume := func(member string) *kgo.Client {
		return gcKgoClient(t, pc, dr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ClientID(member),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	}
	members := []*kgo.Client{consume("m1"), consume("m2")}
	if _, err := pc.Cluster.WaitGroupStable(ctx, group, 2); err != nil {
		t.Fatalf("group %s never had two stable members: %v", group, err)
	}
	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	for _, cl := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				fs.EachError(func(topic string, p int32, err error) {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("fetch %s/%d: %v", topic, p, err)
					}
				})
				mu.Lock()
				fs.EachRecord(func(kr *kgo.Record) { got = append(got, gcFromKgo(kr)) })
				n := len(got)
				mu.Unlock()
				if n >= len(want) {
					stopPolling()
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("consumed %d of %d records before the deadline", len(got), len(want))
	}
	for _, cl := range members {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	gcAssertRecords(t, "consumed", gcWithOffsets(want), got)
	if heartbeats.n() == 0 || joins.n() != 0 {
		t.Errorf("brokers saw %d ConsumerGroupHeartbeat and %d JoinGroup requests: the group did not use KIP-848", heartbeats.n(), joins.n())
	}
	gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
	gcAssertOnlyProxyDialed(t, pc, dr)
}

// =============================== sarama ===============================

// gcSaramaVersion is the Kafka version sarama is told it talks to: the
// newest sarama v1.61.1 knows that kfake serves every request of (headers,
// idempotence, zstd and flexible versions all need a recent one).
var gcSaramaVersion = sarama.V4_0_0_0

// gcSaramaConfig is a sarama config dialing through dr, producing to
// explicit partitions with acks=all and reading groups from the oldest
// offset, with short backoffs so that tests stay fast.
func gcSaramaConfig(dr *gcDialRecorder) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = gcSaramaVersion
	cfg.ClientID = "amber-e2e-sarama"
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = dr
	cfg.Metadata.Retry.Backoff = 20 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Backoff = 20 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false // the test commits, then checks
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Retry.Backoff = 20 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func gcToSarama(topic string, r gcRecord) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
	}
	return m
}

func gcFromSarama(m *sarama.ConsumerMessage) gcRecord {
	r := gcRecord{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, gcHeader{string(h.Key), h.Value})
	}
	return r
}

// gcSaramaProduce sends want with a SyncProducer built from cfg and
// returns the records with the partitions and offsets sarama reported.
func gcSaramaProduce(t *testing.T, pc *testkit.Proxied, cfg *sarama.Config, topic string, want []gcRecord) []gcRecord {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{pc.Bootstrap}, cfg)
	if err != nil {
		t.Fatalf("new sarama producer: %v", err)
	}
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, len(want))
	for i, r := range want {
		msgs[i] = gcToSarama(topic, r)
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("sarama produce to %s: %v", topic, err)
	}
	out := make([]gcRecord, len(want))
	for i, m := range msgs {
		out[i] = want[i]
		out[i].Partition, out[i].Offset = m.Partition, m.Offset
	}
	return out
}

// gcSaramaHandler collects records for a sarama consumer group, marking
// each, and signals done once it has want of them.
type gcSaramaHandler struct {
	want int
	done chan struct{}

	mu   sync.Mutex
	got  []gcRecord
	sess sarama.ConsumerGroupSession
}

func (h *gcSaramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sess = s
	return nil
}

func (h *gcSaramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *gcSaramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			// Mark before counting: once done is closed every record
			// counted is marked, and Commit commits them all.
			s.MarkMessage(m, "")
			h.mu.Lock()
			h.got = append(h.got, gcFromSarama(m))
			if len(h.got) == h.want {
				close(h.done)
			}
			h.mu.Unlock()
		case <-s.Context().Done():
			return nil
		}
	}
}

// gcSaramaConsume consumes n records of topic as group with a
// sarama.ConsumerGroup and commits them.
func gcSaramaConsume(ctx context.Context, t *testing.T, pc *testkit.Proxied, cfg *sarama.Config, group, topic string, n int) []gcRecord {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{pc.Bootstrap}, group, cfg)
	if err != nil {
		t.Fatalf("new sarama consumer group: %v", err)
	}
	h := &gcSaramaHandler{want: n, done: make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		var err error
		for cctx.Err() == nil && err == nil {
			err = cg.Consume(cctx, []string{topic}, h) // returns at each rebalance
		}
		consumed <- err
	}()
	errs := make(chan error, 1)
	go func() {
		for err := range cg.Errors() {
			select {
			case errs <- err:
			default:
			}
		}
	}()
	defer func() {
		cancel()
		if err := <-consumed; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("sarama consume: %v", err)
		}
		if err := cg.Close(); err != nil {
			t.Errorf("close sarama consumer group: %v", err)
		}
	}()
	select {
	case <-h.done:
	case err := <-consumed:
		t.Fatalf("sarama consume stopped early: %v", err)
	case err := <-errs:
		t.Fatalf("sarama consumer group: %v", err)
	case <-ctx.Done():
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("sarama group consumed %d of %d records before the deadline", len(h.got), n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sess.Commit()
	return append([]gcRecord(nil), h.got...)
}

// TestGoSaramaCodecs produces with sarama's SyncProducer with every codec
// sarama supports, then consumes and commits with a sarama.ConsumerGroup.
func TestGoSaramaCodecs(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	codecs := gcObserveCodecs(pc)
	for _, c := range []struct {
		name  string
		codec sarama.CompressionCodec
		id    int8
	}{
		{"none", sarama.CompressionNone, gcCodecNone},
		{"gzip", sarama.CompressionGZIP, gcCodecGzip},
		{"snappy", sarama.CompressionSnappy, gcCodecSnappy},
		{"lz4", sarama.CompressionLZ4, gcCodecLz4},
		{"zstd", sarama.CompressionZSTD, gcCodecZstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := gcContext(t)
			dr := gcNewDialRecorder()
			topic, group := "sarama-"+c.name, "sarama-group-"+c.name
			const partitions = 3
			gcCreateTopic(t, pc, topic, partitions)
			want := gcMakeRecords(topic, 60, partitions)

			cfg := gcSaramaConfig(dr)
			cfg.Producer.Compression = c.codec
			gcAssertRecords(t, "produced", gcWithOffsets(want), gcSaramaProduce(t, pc, cfg, topic, want))
			codecs.assertCodec(t, topic, c.id)

			got := gcSaramaConsume(ctx, t, pc, gcSaramaConfig(dr), group, topic, len(want))
			gcAssertRecords(t, "consumed", gcWithOffsets(want), got)
			gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
			gcAssertOnlyProxyDialed(t, pc, dr)
		})
	}
}

// TestGoSaramaOldProtocol runs sarama told it talks to Kafka 0.11, the
// first version with record headers: Metadata v4, FindCoordinator v1,
// Produce v3, Fetch v5 and JoinGroup v2, all before flexible versions, so
// the proxy rewrites addresses in the old response layouts.
func TestGoSaramaOldProtocol(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	dr := gcNewDialRecorder()
	const topic, group, partitions = "sarama-v0.11", "sarama-v0.11-group", 3
	gcCreateTopic(t, pc, topic, partitions)
	versions := gcObserveVersions(pc)
	want := gcMakeRecords(topic, 60, partitions)

	cfg := gcSaramaConfig(dr)
	cfg.Version = sarama.V0_11_0_0
	cfg.Producer.Compression = sarama.CompressionGZIP
	gcAssertRecords(t, "produced", gcWithOffsets(want), gcSaramaProduce(t, pc, cfg, topic, want))

	cfg = gcSaramaConfig(dr)
	cfg.Version = sarama.V0_11_0_0
	got := gcSaramaConsume(ctx, t, pc, cfg, group, topic, len(want))
	gcAssertRecords(t, "consumed", gcWithOffsets(want), got)
	// Before the check below: kadm speaks the newest versions.
	for _, kv := range []struct {
		key      kmsg.Key
		flexible int16 // first flexible version
	}{{kmsg.Metadata, 9}, {kmsg.FindCoordinator, 3}, {kmsg.Produce, 9}, {kmsg.Fetch, 12}, {kmsg.JoinGroup, 6}, {kmsg.OffsetCommit, 8}} {
		versions.assertBelow(t, kv.key, kv.flexible)
	}
	gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
	gcAssertOnlyProxyDialed(t, pc, dr)
}

// TestGoSaramaIdempotent runs sarama's idempotent producer against brokers
// that answer the first produce requests REQUEST_TIMED_OUT after
// appending, so sarama retries batches the broker already holds: every
// record must still be there exactly once.
func TestGoSaramaIdempotent(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	dr := gcNewDialRecorder()
	const topic, group, partitions = "sarama-idempotent", "sarama-idempotent-group", 3
	gcCreateTopic(t, pc, topic, partitions)
	timeouts := pc.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut, Count: 3})
	initPID := gcCountRequests(pc, kmsg.InitProducerID)

	want := gcMakeRecords(topic, 90, partitions)
	cfg := gcSaramaConfig(dr)
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	gcAssertRecords(t, "produced", gcWithOffsets(want), gcSaramaProduce(t, pc, cfg, topic, want))
	if n := timeouts.Hits(); n != 3 {
		t.Fatalf("%d produce requests were answered REQUEST_TIMED_OUT, want 3", n)
	}
	if initPID.n() == 0 {
		t.Fatalf("sarama never asked for a producer id: it was not idempotent")
	}

	got := gcSaramaConsume(ctx, t, pc, gcSaramaConfig(dr), group, topic, len(want))
	gcAssertRecords(t, "consumed", gcWithOffsets(want), got)
	gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
	gcAssertOnlyProxyDialed(t, pc, dr)
}

// ========================= segmentio/kafka-go =========================

func gcToKafkaGo(r gcRecord) kafka.Message {
	m := kafka.Message{Partition: int(r.Partition), Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return m
}

func gcFromKafkaGo(m kafka.Message) gcRecord {
	r := gcRecord{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, gcHeader{h.Key, h.Value})
	}
	return r
}

// TestGoKafkaGoCodecs writes with a kafka-go Writer with each codec
// kafka-go supports and reads with a Reader in a consumer group, which
// commits what it read.
func TestGoKafkaGoCodecs(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	codecs := gcObserveCodecs(pc)
	for _, c := range []struct {
		name  string
		codec kafka.Compression
		id    int8
	}{
		{"none", 0, gcCodecNone},
		{"gzip", kafka.Gzip, gcCodecGzip},
		{"snappy", kafka.Snappy, gcCodecSnappy},
		{"lz4", kafka.Lz4, gcCodecLz4},
		{"zstd", kafka.Zstd, gcCodecZstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := gcContext(t)
			dr := gcNewDialRecorder()
			topic, group := "kafkago-"+c.name, "kafkago-group-"+c.name
			const partitions = 3
			gcCreateTopic(t, pc, topic, partitions)
			want := gcMakeRecords(topic, 60, partitions)

			w := &kafka.Writer{
				Addr:         kafka.TCP(pc.Bootstrap),
				Topic:        topic,
				Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
				Compression:  c.codec,
				RequiredAcks: kafka.RequireAll,
				BatchSize:    len(want),
				BatchTimeout: 5 * time.Millisecond,
				Transport:    &kafka.Transport{Dial: dr.DialContext, ClientID: "amber-e2e-kafka-go"},
			}
			msgs := make([]kafka.Message, len(want))
			for i, r := range want {
				msgs[i] = gcToKafkaGo(r)
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("kafka-go write: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("close kafka-go writer: %v", err)
			}
			codecs.assertCodec(t, topic, c.id)
			gcAssertRecords(t, "stored (read back with franz-go)", gcWithOffsets(want), gcReadAllKgo(ctx, t, pc, dr, topic, len(want), false))

			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:           []string{pc.Bootstrap},
				GroupID:           group,
				Topic:             topic,
				Dialer:            &kafka.Dialer{DialFunc: dr.DialContext, ClientID: "amber-e2e-kafka-go", Timeout: 5 * time.Second},
				StartOffset:       kafka.FirstOffset,
				MaxWait:           100 * time.Millisecond,
				ReadBackoffMin:    10 * time.Millisecond,
				ReadBackoffMax:    50 * time.Millisecond,
				HeartbeatInterval: 200 * time.Millisecond,
				JoinGroupBackoff:  50 * time.Millisecond,
				CommitInterval:    0, // synchronous commits
			})
			defer r.Close()
			var got []gcRecord
			var read []kafka.Message
			for len(read) < len(want) {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					t.Fatalf("kafka-go read %d of %d: %v", len(read), len(want), err)
				}
				read = append(read, m)
				got = append(got, gcFromKafkaGo(m))
			}
			if err := r.CommitMessages(ctx, read...); err != nil {
				t.Fatalf("kafka-go commit: %v", err)
			}
			gcAssertRecords(t, "consumed", gcKafkaGoView(gcWithOffsets(want)), got)
			gcAssertGroupAtEnd(ctx, t, gcAdmin(t, pc, dr), group, topic, gcEndOffsets(want, partitions))
			gcAssertOnlyProxyDialed(t, pc, dr)
		})
	}
}

// gcKafkaGoView is rs as kafka-go's Reader returns them: it decodes every
// zero-length key, value and header value as nil, so it cannot tell an
// empty value from a null one (readNewBytes in kafka-go's read.go). What
// kafka-go's Writer stored is checked exactly, with franz-go.
func gcKafkaGoView(rs []gcRecord) []gcRecord {
	null := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	out := make([]gcRecord, len(rs))
	for i, r := range rs {
		r.Key, r.Value = null(r.Key), null(r.Value)
		hs := make([]gcHeader, len(r.Headers))
		for j, h := range r.Headers {
			hs[j] = gcHeader{h.Key, null(h.Value)}
		}
		if len(hs) == 0 {
			hs = nil
		}
		r.Headers = hs
		out[i] = r
	}
	return out
}
