// Helpers for the Go client-library tests (go_clients_test.go,
// cluster_changes_test.go). Every client dials only the proxy's bootstrap
// address, and every test checks exactly what came back (keys, values,
// headers, partitions) and where the consumer groups' committed offsets
// ended up. Names start with "gc" (Go clients) to stay clear of the other
// tests in this package.

package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
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

// gcTimeout bounds every test. Tests normally take a few seconds; the
// margin is for the race detector on a busy 2-core machine.
const gcTimeout = 45 * time.Second

// gcContext returns a context that ends with the test or after
// gcTimeout, whichever is first.
func gcContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gcTimeout)
	t.Cleanup(cancel)
	return ctx
}

// gcHeader is one record header. Kafka allows duplicate keys and null values.
type gcHeader struct {
	Key   string
	Value []byte
}

// gcRecord is a client-neutral view of one Kafka record. Nil and empty byte
// slices are different things: nil is a Kafka null.
type gcRecord struct {
	Partition int32
	Offset    int64 // -1 when unknown (what a test expects before producing)
	Key       []byte
	Value     []byte
	Headers   []gcHeader
}

func (r gcRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "p%d@%d key=%s value=%s headers=[", r.Partition, r.Offset, gcShowBytes(r.Key), gcShowBytes(r.Value))
	for i, h := range r.Headers {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%s", h.Key, gcShowBytes(h.Value))
	}
	b.WriteString("]")
	return b.String()
}

func gcShowBytes(b []byte) string {
	switch {
	case b == nil:
		return "<null>"
	case len(b) > 24:
		return strconv.Quote(string(b[:24])) + fmt.Sprintf("...(%d bytes)", len(b))
	default:
		return strconv.Quote(string(b))
	}
}

// gcSameBytes is bytes.Equal that also tells null from empty.
func gcSameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func gcSameRecord(a, b gcRecord) bool {
	if a.Partition != b.Partition || !gcSameBytes(a.Key, b.Key) || !gcSameBytes(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	if a.Offset >= 0 && b.Offset >= 0 && a.Offset != b.Offset {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !gcSameBytes(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// gcMakeRecords returns n records spread round-robin over partitions, with
// every shape a client must carry: null keys, null and empty values, no
// headers, duplicate header keys, empty and null header values. Values are
// repetitive enough that every compression codec shrinks them.
func gcMakeRecords(tag string, n int, partitions int32) []gcRecord {
	out := make([]gcRecord, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, gcMakeRecord(tag, i, partitions))
	}
	return out
}

// gcMakeRecord is record i of gcMakeRecords.
func gcMakeRecord(tag string, i int, partitions int32) gcRecord {
	r := gcRecord{
		Partition: int32(i) % partitions,
		Offset:    -1,
		Key:       []byte(fmt.Sprintf("%s-key-%04d", tag, i)),
		Value:     []byte(strings.Repeat(fmt.Sprintf("%s value %04d; ", tag, i), 12)),
	}
	switch i % 10 {
	case 3:
		r.Key = nil
	case 4:
		r.Value = []byte{}
	case 5:
		r.Value = nil
	}
	switch i % 4 {
	case 0: // no headers
	default:
		r.Headers = []gcHeader{{"n", []byte(strconv.Itoa(i))}, {"dup", []byte("first")}, {"dup", []byte("second")}}
		if i%4 == 2 {
			r.Headers = append(r.Headers, gcHeader{"empty", []byte{}})
		}
		if i%4 == 3 {
			r.Headers = append(r.Headers, gcHeader{"null", nil})
		}
	}
	return r
}

// gcByPartition groups records by partition, keeping their order.
func gcByPartition(rs []gcRecord) map[int32][]gcRecord {
	m := make(map[int32][]gcRecord)
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// gcAssertRecords fails the test unless got holds exactly want: the same
// records in the same order within each partition (order across partitions
// is not defined). Offsets are compared where both sides know them.
func gcAssertRecords(t *testing.T, what string, want, got []gcRecord) {
	t.Helper()
	w, g := gcByPartition(want), gcByPartition(got)
	var parts []int32
	for p := range w {
		parts = append(parts, p)
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	var errs []string
	for _, p := range parts {
		wp, gp := w[p], g[p]
		if len(wp) != len(gp) {
			errs = append(errs, fmt.Sprintf("partition %d: %d records, want %d", p, len(gp), len(wp)))
		}
		for i := 0; i < len(wp) && i < len(gp); i++ {
			if !gcSameRecord(wp[i], gp[i]) {
				errs = append(errs, fmt.Sprintf("partition %d gcRecord %d:\n\tgot  %v\n\twant %v", p, i, gp[i], wp[i]))
				break // the rest of the partition is most likely shifted
			}
		}
	}
	if len(errs) > 0 {
		if len(errs) > 20 {
			errs = append(errs[:20], "...")
		}
		t.Errorf("%s: %d records, want %d:\n%s", what, len(got), len(want), strings.Join(errs, "\n"))
	}
}

// gcWithOffsets returns want with offsets assigned as a fresh topic assigns
// them: 0, 1, 2, ... in each partition, in order.
func gcWithOffsets(want []gcRecord) []gcRecord {
	next := make(map[int32]int64)
	out := make([]gcRecord, len(want))
	for i, r := range want {
		r.Offset = next[r.Partition]
		next[r.Partition]++
		out[i] = r
	}
	return out
}

// gcEndOffsets is the end offset of every partition of a freshly written
// topic holding rs (and nothing else).
func gcEndOffsets(rs []gcRecord, partitions int32) map[int32]int64 {
	m := make(map[int32]int64, partitions)
	for p := int32(0); p < partitions; p++ {
		m[p] = 0
	}
	for _, r := range rs {
		m[r.Partition]++
	}
	return m
}

// ---- franz-go conversions ----

func gcToKgo(topic string, r gcRecord) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

func gcFromKgo(kr *kgo.Record) gcRecord {
	r := gcRecord{Partition: kr.Partition, Offset: kr.Offset, Key: kr.Key, Value: kr.Value}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, gcHeader{h.Key, h.Value})
	}
	return r
}

// ---- the proxy and its cluster ----

// gcCluster starts a 3-broker kfake cluster behind a proxy. opts are
// kfake options; topics are better created with gcCreateTopic.
func gcCluster(t *testing.T, opts ...kfake.Opt) *testkit.Proxied {
	t.Helper()
	return testkit.ProxiedCluster(t, opts...)
}

// gcCreateTopic creates topic directly in kfake (not through a client).
func gcCreateTopic(t *testing.T, pc *testkit.Proxied, topic string, partitions int32) {
	t.Helper()
	if err := pc.Cluster.CreateTopic(topic, partitions, nil); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// gcDialRecorder dials TCP and remembers every address it was asked to dial,
// so that a test can prove a client never learnt a real broker address.
type gcDialRecorder struct {
	d  net.Dialer
	mu sync.Mutex
	// addrs counts the dials per address.
	addrs map[string]int
}

func gcNewDialRecorder() *gcDialRecorder {
	return &gcDialRecorder{d: net.Dialer{Timeout: 5 * time.Second}, addrs: make(map[string]int)}
}

// DialContext has the signature kgo.Dialer and kafka-go want.
func (r *gcDialRecorder) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.addrs[addr]++
	r.mu.Unlock()
	return r.d.DialContext(ctx, network, addr)
}

// Dial has the signature sarama's Net.Proxy.Dialer wants.
func (r *gcDialRecorder) Dial(network, addr string) (net.Conn, error) {
	return r.DialContext(context.Background(), network, addr)
}

func (r *gcDialRecorder) dialed() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.addrs)
}

// gcAssertOnlyProxyDialed fails the test unless every address r dialed is the
// proxy's bootstrap address or one of its advertised per-broker addresses,
// and none is a real broker address (the cluster's listeners, plus extra).
// It also fails if r dialed nothing: a check that checks nothing is a bug.
func gcAssertOnlyProxyDialed(t *testing.T, pc *testkit.Proxied, r *gcDialRecorder, extraReal ...string) {
	t.Helper()
	allowed := map[string]bool{pc.Bootstrap: true}
	for _, b := range pc.Proxy.Brokers() {
		allowed[b.Advertised] = true
	}
	upstream := make(map[string]bool)
	for _, a := range append(pc.Cluster.ListenAddrs(), extraReal...) {
		upstream[a] = true
	}
	for _, b := range pc.Proxy.Brokers() {
		upstream[b.Upstream] = true
	}
	dialed := r.dialed()
	if len(dialed) == 0 {
		t.Errorf("the client dialed nothing through the recording dialer")
	}
	for addr, n := range dialed {
		switch {
		case upstream[addr]:
			t.Errorf("client dialed real broker address %s (%d times): the proxy leaked it", addr, n)
		case !allowed[addr]:
			t.Errorf("client dialed %s (%d times), which is neither the proxy's bootstrap %s nor one of its broker listeners %v", addr, n, pc.Bootstrap, pc.Proxy.Brokers())
		}
	}
}

// gcKgoClient returns a franz-go client that dials only pc's bootstrap
// address through dr, closed when the test ends.
func gcKgoClient(t *testing.T, pc *testkit.Proxied, dr *gcDialRecorder, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(pc.Bootstrap),
		kgo.Dialer(dr.DialContext),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("new kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// gcAdmin returns a kadm client talking to the cluster through the
// proxy, for independent checks of what a client under test did.
func gcAdmin(t *testing.T, pc *testkit.Proxied, dr *gcDialRecorder) *kadm.Client {
	t.Helper()
	return kadm.NewClient(gcKgoClient(t, pc, dr))
}

// gcProduceKgo produces want synchronously to explicit partitions and
// returns the records with the offsets the broker assigned.
func gcProduceKgo(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, want []gcRecord) []gcRecord {
	t.Helper()
	krs := make([]*kgo.Record, len(want))
	for i, r := range want {
		krs[i] = gcToKgo(topic, r)
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	out := make([]gcRecord, len(krs))
	for i, kr := range krs {
		out[i] = gcFromKgo(kr)
	}
	return out
}

// gcPollKgo polls cl until it has n records or ctx ends, failing on any
// fetch error.
func gcPollKgo(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []gcRecord {
	t.Helper()
	var got []gcRecord
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline: %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(kr *kgo.Record) { got = append(got, gcFromKgo(kr)) })
	}
	return got
}

// gcReadAllKgo reads topic from the start, outside any group, until it has
// n records; with readCommitted it reads only committed transactions.
func gcReadAllKgo(ctx context.Context, t *testing.T, pc *testkit.Proxied, dr *gcDialRecorder, topic string, n int, readCommitted bool) []gcRecord {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := gcKgoClient(t, pc, dr, opts...)
	defer cl.Close()
	return gcPollKgo(ctx, t, cl, n)
}

// gcAssertGroupOffsets fails the test unless group has committed exactly
// want (partition → offset) for topic, checked through the proxy with
// kadm. Commits some clients make in the background are waited for.
func gcAssertGroupOffsets(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64) {
	t.Helper()
	var last string
	for {
		os, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = os.Error()
		}
		if err == nil {
			got := make(map[int32]int64)
			os.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic {
					got[o.Partition] = o.At
				}
			})
			if fmt.Sprint(got) == fmt.Sprint(want) { // fmt sorts map keys
				return
			}
			last = fmt.Sprintf("group %s committed %v on %s, want %v", group, got, topic, want)
		} else {
			last = fmt.Sprintf("fetch offsets of group %s: %v", group, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// gcAssertGroupAtEnd fails the test unless group's committed offsets on
// topic equal the topic's end offsets, both fetched through the proxy, and
// the end offsets equal wantEnd (so that "committed == end" cannot pass on
// an empty topic).
func gcAssertGroupAtEnd(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string, wantEnd map[int32]int64) {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	got := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { got[o.Partition] = o.Offset })
	if fmt.Sprint(got) != fmt.Sprint(wantEnd) {
		t.Fatalf("end offsets of %s are %v, want %v", topic, got, wantEnd)
	}
	gcAssertGroupOffsets(ctx, t, adm, group, topic, got)
}

// ---- observing the broker side ----

// gcCodecSeen records, per topic, which compression codecs the produce
// requests reaching the brokers used: proof that a codec was really
// exercised end to end rather than silently dropped by a client.
type gcCodecSeen struct {
	pc *testkit.Proxied
	mu sync.Mutex
	// byName and byID: Produce v13+ names topics by ID only.
	byName map[string]map[int8]int // topic → codec → batches
	byID   map[[16]byte]map[int8]int
}

// gcObserveCodecs starts recording the codec of every produced batch.
func gcObserveCodecs(pc *testkit.Proxied) *gcCodecSeen {
	cs := &gcCodecSeen{pc: pc, byName: make(map[string]map[int8]int), byID: make(map[[16]byte]map[int8]int)}
	add := func(m map[int8]int, b []byte) map[int8]int {
		if m == nil {
			m = make(map[int8]int)
		}
		for _, codec := range gcBatchCodecs(b) {
			m[codec]++
		}
		return m
	}
	pc.Cluster.Fault(kfake.Fault{
		Keys:    []kmsg.Key{kmsg.Produce},
		Observe: true,
		Count:   -1,
		When: func(req kmsg.Request) bool {
			pr, ok := req.(*kmsg.ProduceRequest)
			if !ok {
				return false
			}
			cs.mu.Lock()
			defer cs.mu.Unlock()
			for _, rt := range pr.Topics {
				for _, rp := range rt.Partitions {
					if rt.Topic != "" {
						cs.byName[rt.Topic] = add(cs.byName[rt.Topic], rp.Records)
					} else {
						cs.byID[rt.TopicID] = add(cs.byID[rt.TopicID], rp.Records)
					}
				}
			}
			return true
		},
	})
	return cs
}

// assertCodec fails unless batches were produced to topic and every one
// used codec.
func (cs *gcCodecSeen) assertCodec(t *testing.T, topic string, codec int8) {
	t.Helper()
	info := cs.pc.Cluster.TopicInfo(topic)
	if info == nil {
		t.Fatalf("no topic %s", topic)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	seen := make(map[int8]int)
	for c, n := range cs.byName[topic] {
		seen[c] += n
	}
	for c, n := range cs.byID[info.TopicID] {
		seen[c] += n
	}
	if len(seen) != 1 || seen[codec] == 0 {
		t.Errorf("batches produced to %s used codecs %v (codec → batches), want only codec %d", topic, seen, codec)
	}
}

// gcBatchCodecs returns the compression codec (attributes & 7) of every
// record batch in b.
func gcBatchCodecs(b []byte) []int8 {
	var out []int8
	for len(b) >= 23 {
		length := int(int32(binary.BigEndian.Uint32(b[8:12])))
		out = append(out, int8(binary.BigEndian.Uint16(b[21:23])&7))
		if length <= 0 || 12+length > len(b) {
			break
		}
		b = b[12+length:]
	}
	return out
}

// gcKeyCounter counts requests of some API keys per node, as the brokers
// see them.
type gcKeyCounter struct {
	h *kfake.FaultHandle
}

// gcCountRequests counts requests with key reaching the nodes (all if none).
func gcCountRequests(pc *testkit.Proxied, key kmsg.Key, nodes ...int32) gcKeyCounter {
	return gcKeyCounter{pc.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{key}, Nodes: nodes, Observe: true, Count: -1})}
}

func (k gcKeyCounter) n() int { return k.h.Hits() }

// gcVersionsSeen records which versions of each request key reached the
// brokers.
type gcVersionsSeen struct {
	mu sync.Mutex
	m  map[kmsg.Key]map[int16]bool
}

func gcObserveVersions(pc *testkit.Proxied) *gcVersionsSeen {
	vs := &gcVersionsSeen{m: make(map[kmsg.Key]map[int16]bool)}
	pc.Cluster.Fault(kfake.Fault{Observe: true, Count: -1, When: func(req kmsg.Request) bool {
		vs.mu.Lock()
		defer vs.mu.Unlock()
		k := kmsg.Key(req.Key())
		if vs.m[k] == nil {
			vs.m[k] = make(map[int16]bool)
		}
		vs.m[k][req.GetVersion()] = true
		return true
	}})
	return vs
}

// assertBelow fails unless key was seen, only at versions below v.
func (vs *gcVersionsSeen) assertBelow(t *testing.T, key kmsg.Key, v int16) {
	t.Helper()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if len(vs.m[key]) == 0 {
		t.Errorf("no %s request reached the brokers", key.Name())
	}
	for seen := range vs.m[key] {
		if seen >= v {
			t.Errorf("%s v%d reached the brokers, want only versions below %d", key.Name(), seen, v)
		}
	}
}
