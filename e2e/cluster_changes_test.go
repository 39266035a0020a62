package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/kafkatest"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// gcStream is franz-go producing (idempotently, to explicit partitions)
// and consuming (as a consumer group) continuously through the proxy while
// a test changes the cluster underneath.
type gcStream struct {
	t          *testing.T
	pc         *testkit.Proxied
	topic      string
	group      string
	partitions int32
	dr         *gcDialRecorder
	prod, cons *kgo.Client
	gate       *gcEpochGate

	stopProducing chan struct{} // closed to stop after the round in flight
	produceDone   chan struct{}
	consumeDone   chan struct{}

	mu       sync.Mutex
	produced []gcRecord // as acknowledged, with offsets
	consumed []gcRecord
	errs     []error
}

// gcStartStream starts producing to and consuming from topic (which must
// exist) until stop.
func gcStartStream(ctx context.Context, t *testing.T, pc *testkit.Proxied, topic string, partitions int32) *gcStream {
	t.Helper()
	if partitions > 10 {
		t.Fatalf("%d partitions: changeLeaders needs every produce round of 10 records to reach every partition", partitions)
	}
	s := &gcStream{
		t: t, pc: pc, topic: topic, group: topic + "-group", partitions: partitions,
		dr:            gcNewDialRecorder(),
		gate:          gcNewEpochGate(t, pc),
		stopProducing: make(chan struct{}),
		produceDone:   make(chan struct{}),
		consumeDone:   make(chan struct{}),
	}
	s.prod = gcKgoClient(t, pc, s.dr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	s.cons = gcKgoClient(t, pc, s.dr, kgo.ConsumerGroup(s.group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())

	go s.produce(ctx)
	go s.consume(ctx)
	return s
}

// gcEpochGate holds back OffsetForLeaderEpoch requests while closed.
//
// It works around a kfake bug, reproduced without the proxy: after a
// leader change (ShufflePartitionLeaders, MoveTopicPartition, AddNode) and
// until a batch is written in the new leader epoch, OffsetForLeaderEpoch
// for the previous epoch answers UNDEFINED_EPOCH_OFFSET (-1) where Kafka
// answers the log end offset (kfake keeps no start offset for an epoch
// without batches; Kafka's leader epoch cache does). franz-go then reports
// ErrDataLoss ("lost records; the client consumed to offset 32 epoch 0 but
// was reset to offset 0 epoch 0") and re-reads the partition from
// ConsumeResetOffset: duplicates that have nothing to do with the proxy.
// franz-go always validates epochs after a KIP-951 move, so this cannot be
// turned off in the client.
//
// A test closes the gate, changes leaders, waits until the producer has
// written every partition in the new epoch, and opens it: the validation
// requests then get kfake's (now correct) answer. Nothing else is delayed.
type gcEpochGate struct {
	mu   sync.Mutex
	open chan struct{} // closed while requests may pass
}

func gcNewEpochGate(t *testing.T, pc *testkit.Proxied) *gcEpochGate {
	g := &gcEpochGate{open: make(chan struct{})}
	close(g.open)
	pc.Cluster.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(kmsg.Request) (kmsg.Response, error, bool) {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
		default:
			pc.Cluster.SleepControl(func() { <-open })
		}
		return nil, nil, false // kfake answers
	})
	t.Cleanup(g.release) // before the cluster closes: wake sleepers
	return g
}

// hold closes the gate.
func (g *gcEpochGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

// release opens the gate.
func (g *gcEpochGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// produce sends rounds of 10 records with ProduceSync until stopped. A
// round is never interrupted, so that every record written is also
// acknowledged (and so expected).
func (s *gcStream) produce(ctx context.Context) {
	defer close(s.produceDone)
	for i := 0; ; i += 10 {
		select {
		case <-s.stopProducing:
			return
		default:
		}
		krs := make([]*kgo.Record, 10)
		for j := range krs {
			krs[j] = gcToKgo(s.topic, gcMakeRecord(s.topic, i+j, s.partitions))
		}
		err := s.prod.ProduceSync(ctx, krs...).FirstErr()
		s.mu.Lock()
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("produce records %d..%d: %w", i, i+9, err))
			s.mu.Unlock()
			return
		}
		for _, kr := range krs {
			s.produced = append(s.produced, gcFromKgo(kr))
		}
		s.mu.Unlock()
	}
}

// consume polls until the producer has stopped and everything it produced
// has been consumed, or ctx ends.
func (s *gcStream) consume(ctx context.Context) {
	defer close(s.consumeDone)
	for ctx.Err() == nil {
		select {
		case <-s.produceDone:
			s.mu.Lock()
			caughtUp := len(s.consumed) >= len(s.produced)
			s.mu.Unlock()
			if caughtUp {
				return
			}
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := s.cons.PollFetches(pctx)
		cancel()
		s.mu.Lock()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.errs = append(s.errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
			}
		})
		fs.EachRecord(func(kr *kgo.Record) { s.consumed = append(s.consumed, gcFromKgo(kr)) })
		s.mu.Unlock()
	}
}

// counts returns how many records have been produced and consumed.
func (s *gcStream) counts() (produced, consumed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.produced), len(s.consumed)
}

// waitProgress waits until n more records than now have been both
// produced and consumed: the clients work in the cluster as it is now.
func (s *gcStream) waitProgress(ctx context.Context, n int) {
	s.t.Helper()
	p0, _ := s.counts()
	for {
		p, c := s.counts()
		if p >= p0+n && c >= p0+n {
			return
		}
		s.mu.Lock()
		errs := errors.Join(s.errs...)
		s.mu.Unlock()
		if errs != nil {
			s.t.Fatalf("streaming failed: %v", errs)
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("no progress: %d produced and %d consumed, want both past %d: %v", p, c, p0+n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// changeLeaders runs change, which moves partition leaders, with
// OffsetForLeaderEpoch held back (see gcEpochGate) until the producer has
// written every partition in the new leader epochs.
func (s *gcStream) changeLeaders(ctx context.Context, change func()) {
	s.t.Helper()
	s.gate.hold()
	defer s.gate.release()
	change()
	// The produce round in flight may have been written before change;
	// the one after it, 10 records round-robin over every partition, was
	// written after.
	p0, _ := s.counts()
	for {
		if p, _ := s.counts(); p >= p0+20 {
			return
		}
		s.mu.Lock()
		errs := errors.Join(s.errs...)
		s.mu.Unlock()
		if errs != nil {
			s.t.Fatalf("streaming failed: %v", errs)
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("the producer made no progress after the leader change: %v", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// finish stops producing, waits for the consumer to catch up, commits, and
// checks that every acknowledged record was consumed exactly once, in
// order, with the offsets the broker assigned (0, 1, 2, ... per partition:
// a duplicate append would shift them), and that the group's commits sit
// at the end offsets.
func (s *gcStream) finish(ctx context.Context) {
	t := s.t
	t.Helper()
	close(s.stopProducing)
	<-s.produceDone
	select {
	case <-s.consumeDone:
	case <-ctx.Done():
		p, c := s.counts()
		t.Fatalf("consumer did not catch up: %d produced, %d consumed", p, c)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := errors.Join(s.errs...); err != nil {
		t.Fatalf("streaming failed: %v", err)
	}
	if err := s.cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	want := make([]gcRecord, len(s.produced))
	for i := range want {
		want[i] = gcMakeRecord(s.topic, i, s.partitions)
	}
	want = gcWithOffsets(want)
	gcAssertRecords(t, "acknowledged", want, s.produced)
	gcAssertRecords(t, "consumed", want, s.consumed)
	gcAssertGroupAtEnd(ctx, t, gcAdmin(t, s.pc, s.dr), s.group, s.topic, gcEndOffsets(want, s.partitions))
	t.Logf("%d records produced and consumed exactly once", len(want))
}

// TestClusterAddBroker adds a broker while franz-go produces and consumes
// through the proxy, and moves half the partitions to it. The proxy must
// open a listener for the new broker, the clients must follow the
// partitions there through that listener (never the broker's real
// address), and nothing may be lost or duplicated.
func TestClusterAddBroker(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	const topic, partitions = "cluster-add-broker", 6
	const newNode = 1000
	gcCreateTopic(t, pc, topic, partitions)
	produceOnNew, fetchOnNew := gcCountRequests(pc, kmsg.Produce, newNode), gcCountRequests(pc, kmsg.Fetch, newNode)

	s := gcStartStream(ctx, t, pc, topic, partitions)
	s.waitProgress(ctx, 100)

	// Add the broker (kfake then elects new leaders at random, the new
	// broker among the candidates) and move half the partitions to it.
	before := pc.Cluster.ListenAddrs()
	var newAddr string
	moved := []int32{0, 2, 4}
	s.changeLeaders(ctx, func() {
		id, port, err := pc.Cluster.AddNode(newNode, 0)
		if err != nil || id != newNode {
			t.Fatalf("add node %d: got node %d: %v", newNode, id, err)
		}
		for _, a := range pc.Cluster.ListenAddrs() {
			if !slices.Contains(before, a) {
				newAddr = a
			}
		}
		if _, p, _ := net.SplitHostPort(newAddr); p != strconv.Itoa(port) {
			t.Fatalf("cannot find the new broker's address: listeners were %v, are %v, port %d", before, pc.Cluster.ListenAddrs(), port)
		}
		for _, p := range moved {
			if err := pc.Cluster.MoveTopicPartition(topic, p, newNode); err != nil {
				t.Fatalf("move %s/%d to node %d: %v", topic, p, newNode, err)
			}
		}
	})
	s.waitProgress(ctx, 300)

	var advertised string
	for _, b := range pc.Proxy.Brokers() {
		if b.Upstream == newAddr {
			advertised = b.Advertised
			if b.NodeID != newNode {
				t.Errorf("the proxy's listener for %s says node %d, want %d", newAddr, b.NodeID, newNode)
			}
		}
	}
	if advertised == "" {
		t.Fatalf("the proxy has no listener for the new broker %s: %+v", newAddr, pc.Proxy.Brokers())
	}
	if n := len(pc.Proxy.Brokers()); n != 4 {
		t.Errorf("the proxy has %d broker listeners, want 4: %+v", n, pc.Proxy.Brokers())
	}
	for _, p := range moved {
		if l := pc.Cluster.LeaderFor(topic, p); l != newNode {
			t.Errorf("%s/%d is led by %d, want %d", topic, p, l, newNode)
		}
	}
	if produceOnNew.n() == 0 || fetchOnNew.n() == 0 {
		t.Errorf("the new broker served %d produce and %d fetch requests: the clients never reached it", produceOnNew.n(), fetchOnNew.n())
	}

	s.finish(ctx)
	if s.dr.dialed()[advertised] == 0 {
		t.Errorf("the clients never dialed the proxy's listener %s for the new broker; dialed %v", advertised, s.dr.dialed())
	}
	gcAssertOnlyProxyDialed(t, pc, s.dr, newAddr)
}

// TestClusterLeaderMoves elects new leaders for every partition, several
// times, while franz-go produces and consumes through the proxy. Requests
// that reach a former leader are answered NOT_LEADER_OR_FOLLOWER with the
// new leader and, from Produce v10 and Fetch v16 on, the KIP-951
// NodeEndpoints naming brokers: the proxy must rewrite those to its own
// listeners (checked directly with raw requests) and the clients must
// never learn a real address. The proxy keeps clients at Fetch v15 by
// default (proxy.Options.FetchNodeEndpoints), so franz-go's fetches carry
// no NodeEndpoints; a Fetch v16+ sent regardless of ApiVersions must still
// have them rewritten. Nothing may be lost or duplicated.
func TestClusterLeaderMoves(t *testing.T) {
	t.Parallel()
	pc := gcCluster(t)
	ctx := gcContext(t)
	const topic, partitions = "cluster-leader-moves", 6
	gcCreateTopic(t, pc, topic, partitions)

	s := gcStartStream(ctx, t, pc, topic, partitions)
	s.waitProgress(ctx, 100)
	for i := 0; i < 5; i++ {
		s.changeLeaders(ctx, pc.Cluster.ShufflePartitionLeaders)
		s.waitProgress(ctx, 60)
	}
	gcAssertNodeEndpoints(ctx, t, pc, s.dr, topic)
	s.finish(ctx)
	gcAssertOnlyProxyDialed(t, pc, s.dr)
}

// gcAssertNodeEndpoints sends a Produce and a Fetch for a partition of
// topic to a broker that does not lead it, through the proxy, and checks
// that the KIP-951 NodeEndpoints in the NOT_LEADER_OR_FOLLOWER answers name
// the proxy's listeners (the one for each node id), not the brokers. The
// client negotiates Fetch v15, which has no NodeEndpoints; the Fetch is
// also sent at the newest version on a raw connection that ignores
// ApiVersions.
func gcAssertNodeEndpoints(ctx context.Context, t *testing.T, pc *testkit.Proxied, dr *gcDialRecorder, topic string) {
	t.Helper()
	cl := gcKgoClient(t, pc, dr)
	info := pc.Cluster.TopicInfo(topic)
	const partition = 0
	leader := pc.Cluster.LeaderFor(topic, partition)
	follower := int32(-1)
	for _, b := range pc.Proxy.Brokers() {
		if b.NodeID != leader {
			follower = b.NodeID
			break
		}
	}
	if follower < 0 {
		t.Fatalf("no broker other than the leader %d: %+v", leader, pc.Proxy.Brokers())
	}
	advertised := make(map[int32]string)
	for _, b := range pc.Proxy.Brokers() {
		advertised[b.NodeID] = b.Advertised
	}
	check := func(what string, version int16, minVersion int16, errCode int16, currentLeader int32, endpoints map[int32]string) {
		t.Helper()
		if err := kerr.ErrorForCode(errCode); !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Errorf("%s v%d to non-leader %d: error %v, want NOT_LEADER_OR_FOLLOWER", what, version, follower, err)
		}
		if currentLeader != leader {
			t.Errorf("%s v%d: CurrentLeader %d, want %d", what, version, currentLeader, leader)
		}
		// Below minVersion Apache Kafka sends no NodeEndpoints, but kfake
		// does (kmsg writes tagged fields at every flexible version): if
		// there are any, they must be the proxy's.
		if len(endpoints) == 0 && version >= minVersion {
			t.Errorf("%s v%d: no NodeEndpoints in the response", what, version)
		}
		for node, addr := range endpoints {
			if addr != advertised[node] {
				t.Errorf("%s v%d: NodeEndpoints name node %d at %s, want the proxy's %s", what, version, node, addr, advertised[node])
			}
		}
		t.Logf("%s v%d NodeEndpoints: %v", what, version, endpoints)
	}

	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = -1
	preq.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = topic, info.TopicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = partition
	pp.Records = gcRawBatch([]byte("sent to a follower: never appended"))
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	kresp, err := cl.Broker(int(follower)).Request(ctx, preq)
	if err != nil {
		t.Fatalf("produce to node %d: %v", follower, err)
	}
	presp := kresp.(*kmsg.ProduceResponse)
	if len(presp.Topics) != 1 || len(presp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics, want 1 with 1 partition: %+v", len(presp.Topics), presp.Topics)
	}
	endpoints := make(map[int32]string)
	for _, b := range presp.Brokers {
		endpoints[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	ppr := presp.Topics[0].Partitions[0]
	check("Produce", preq.GetVersion(), 10, ppr.ErrorCode, ppr.CurrentLeader.LeaderID, endpoints)

	freq := kmsg.NewPtrFetchRequest()
	freq.ReplicaID = -1
	freq.MaxWaitMillis = 0
	freq.MinBytes = 1
	freq.MaxBytes = 1 << 20
	freq.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, info.TopicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = partition
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	kresp, err = cl.Broker(int(follower)).Request(ctx, freq)
	if err != nil {
		t.Fatalf("fetch from node %d: %v", follower, err)
	}
	fresp := kresp.(*kmsg.FetchResponse)
	if fresp.ErrorCode != 0 || len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response: error %d, %d topics, want 1 with 1 partition: %+v", fresp.ErrorCode, len(fresp.Topics), fresp.Topics)
	}
	endpoints = make(map[int32]string)
	for _, b := range fresp.Brokers {
		endpoints[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	fpr := fresp.Topics[0].Partitions[0]
	if v := freq.GetVersion(); v != protocol.FetchNoNodeEndpoints {
		t.Errorf("the client fetched at v%d: the proxy should keep it at v%d", v, protocol.FetchNoNodeEndpoints)
	}
	check("Fetch", freq.GetVersion(), 16, fpr.ErrorCode, fpr.CurrentLeader.LeaderID, endpoints)

	// A client that ignores ApiVersions: the proxy decodes and rewrites.
	raw, err := kafkatest.DialRaw(advertised[follower])
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	freq.SetVersion(protocol.MaxVersion(int16(kmsg.Fetch)))
	kresp, err = raw.Request(freq)
	if err != nil {
		t.Fatalf("raw fetch v%d from node %d: %v", freq.GetVersion(), follower, err)
	}
	fresp = kresp.(*kmsg.FetchResponse)
	if fresp.ErrorCode != 0 || len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions) != 1 {
		t.Fatalf("raw fetch response: error %d, %d topics, want 1 with 1 partition: %+v", fresp.ErrorCode, len(fresp.Topics), fresp.Topics)
	}
	endpoints = make(map[int32]string)
	for _, b := range fresp.Brokers {
		endpoints[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	fpr = fresp.Topics[0].Partitions[0]
	check("Fetch (raw)", freq.GetVersion(), 16, fpr.ErrorCode, fpr.CurrentLeader.LeaderID, endpoints)
}

// gcRawBatch is a valid magic-2 record batch holding one record with a null
// key and value v, for hand-made produce requests.
func gcRawBatch(v []byte) []byte {
	var rec []byte
	rec = append(rec, 0)               // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, int64(len(v)))
	rec = append(rec, v...)
	rec = binary.AppendVarint(rec, 0) // no headers
	records := binary.AppendVarint(nil, int64(len(rec)))
	records = append(records, rec...)

	now := time.Now().UnixMilli()
	var body []byte                                         // from attributes on: what the CRC covers
	body = binary.BigEndian.AppendUint16(body, 0)           // attributes
	body = binary.BigEndian.AppendUint32(body, 0)           // last offset delta
	body = binary.BigEndian.AppendUint64(body, uint64(now)) // first timestamp
	body = binary.BigEndian.AppendUint64(body, uint64(now)) // max timestamp
	body = binary.BigEndian.AppendUint64(body, ^uint64(0))  // producer id -1
	body = binary.BigEndian.AppendUint16(body, ^uint16(0))  // producer epoch -1
	body = binary.BigEndian.AppendUint32(body, ^uint32(0))  // base sequence -1
	body = binary.BigEndian.AppendUint32(body, 1)           // record count
	body = append(body, records...)

	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(body))) // batch length, after this field
	b = binary.BigEndian.AppendUint32(b, ^uint32(0))              // partition leader epoch -1
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}
