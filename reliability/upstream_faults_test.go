package reliability_test

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
)

// relays puts a TCP relay between the proxy and each broker (the proxy's
// Dial hook dials the relay instead of the broker). A relay can delay
// every chunk it forwards, or cut connections at random points: before a
// request reaches the broker, halfway through one, or after the broker
// has answered and before the answer reaches the proxy.
type relays struct {
	t  testing.TB
	mu sync.Mutex
	m  map[string]*relay // by broker address
}

type relay struct {
	target string
	ln     net.Listener
	// delay is added before each chunk forwarded, either way.
	delay atomic.Int64
	// cutOneIn: each chunk read has a 1 in cutOneIn chance of cutting the
	// connection (0: never).
	cutOneIn atomic.Int64
	cuts     atomic.Int64
	mu       sync.Mutex
	rng      *rand.Rand
}

func newRelays(t testing.TB) *relays { return &relays{t: t, m: map[string]*relay{}} }

// get returns the relay in front of addr, starting it on first use.
func (rs *relays) get(addr string) (*relay, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r := rs.m[addr]; r != nil {
		return r, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{target: addr, ln: ln, rng: rand.New(rand.NewSource(int64(len(rs.m)) + 1))}
	rs.m[addr] = r
	rs.t.Cleanup(func() { ln.Close() })
	go r.accept()
	return r, nil
}

// dial is the proxy's Dial hook.
func (rs *relays) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r, err := rs.get(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, r.ln.Addr().String())
}

// each applies fn to every relay started so far.
func (rs *relays) each(fn func(*relay)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.m {
		fn(r)
	}
}

func (rs *relays) cuts() (n int64) {
	rs.each(func(r *relay) { n += r.cuts.Load() })
	return n
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
			if err != nil {
				c.Close()
				return
			}
			var once sync.Once
			cut := func() { once.Do(func() { c.Close(); up.Close() }) }
			go r.pipe(up, c, cut)
			r.pipe(c, up, cut)
		}()
	}
}

// pipe copies src to dst chunk by chunk, delaying or cutting as set.
func (r *relay) pipe(dst, src net.Conn, cut func()) {
	defer cut()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(r.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			if k := r.cutOneIn.Load(); k > 0 {
				r.mu.Lock()
				roll, half := r.rng.Int63n(k), r.rng.Intn(2) == 0
				r.mu.Unlock()
				if roll == 0 {
					r.cuts.Add(1)
					if half { // part of the frame goes through
						dst.Write(buf[:n/2])
					}
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a closed connection: cut the other side too
			return
		}
	}
}

// TestUpstreamConnectionsCut cuts the proxy's broker connections at
// random (about one chunk in 30 for 6 s): requests cut before or halfway
// to the broker, and answers lost after the broker applied the request.
// Two producers stream through the proxy, one idempotent and one not
// (whose retries of a lost answer append the records twice, and which
// may give up on a batch: the client is told). The proxy
// must close the affected client connections, never journal a batch the
// broker did not take or at another offset, and keep serving. A batch
// whose answer was lost is in the cluster but not teed: a hole, which the
// backfill fills; then archive == cluster, and every acknowledged record
// was archived by the proxy.
func TestUpstreamConnectionsCut(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "cut-idem", "cut-plain"))
	rs := newRelays(t)
	store := memstore.New()
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dial: rs.dial})
	idem := startStream(t, []string{n.Addr()}, "cut-idem", "idem", 8)
	plain := startStream(t, []string{n.Addr()}, "cut-plain", "plain", 8, kgo.DisableIdempotentWrite())
	idem.waitAcks(t, 200, 30*time.Second)
	plain.waitAcks(t, 200, 30*time.Second)

	rs.each(func(r *relay) { r.cutOneIn.Store(30) })
	start := time.Now()
	for time.Since(start) < 6*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	rs.each(func(r *relay) { r.cutOneIn.Store(0) })
	cuts := rs.cuts()
	idem.progress(t, 200, 30*time.Second)
	plain.progress(t, 200, 30*time.Second)
	if errs := idem.finish(); len(errs) > 0 {
		t.Errorf("idempotent producer: %d errors, first: %v", len(errs), errs[0])
	}
	// franz-go may give up on a non-idempotent batch whose connection
	// closed right after the request went out: the client is told, and
	// the batch may or may not be in the cluster; either way the archive
	// must end up equal to it.
	plainErrs := plain.finish()
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	if cuts < 10 {
		t.Fatalf("only %d connections cut", cuts)
	}
	acks := idem.acks.snapshot()
	for k, v := range plain.acks.snapshot().m {
		acks.m[k] = v
	}
	t.Logf("RESULT upstream connections cut %d times in 6 s; %d idempotent and %d plain records acknowledged, %d plain ones failed to the client; tee: %+v",
		cuts, idem.acks.len(), plain.acks.len(), len(plainErrs), n.tee.Stats())
	checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"cut-idem", "cut-plain"}, MustHold: acks, Backfill: true})
}

// TestSlowUpstream delays everything between the proxy and one broker by
// 150 ms per chunk while a producer streams to partitions led by every
// broker. The partitions on the slow broker slow down; those on the
// others must not (the proxy has no head-of-line blocking across
// brokers); nothing times out and nothing is lost.
func TestSlowUpstream(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "slow"))
	for p := range int32(3) { // one partition per broker (kfake picks leaders at random)
		if err := c.MoveTopicPartition("slow", p, p); err != nil {
			t.Fatal(err)
		}
	}
	rs := newRelays(t)
	store := memstore.New()
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dial: rs.dial})

	// Which broker leads each partition, and so which relay to slow.
	direct, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx := testCtx(t, time.Minute)
	meta, err := kadm.NewClient(direct).Metadata(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]string{}
	addr := map[int32]string{}
	for _, b := range meta.Brokers {
		addr[b.NodeID] = net.JoinHostPort(b.Host, fmt.Sprint(b.Port))
	}
	for _, p := range meta.Topics["slow"].Partitions {
		leaders[p.Partition] = addr[p.Leader]
	}
	slowAddr := leaders[0]

	s := startStream(t, []string{n.Addr()}, "slow", "slow", 16, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	s.waitAcks(t, 300, 30*time.Second)
	slow, err := rs.get(slowAddr)
	if err != nil {
		t.Fatal(err)
	}
	slow.delay.Store(int64(150 * time.Millisecond))
	mark := s.acks.len()
	s.progress(t, 200, time.Minute)
	slow.delay.Store(0)
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	// Latency per partition while the broker was slow.
	lat := s.latencies(mark)
	var slowP50, fastP50 []time.Duration
	for p, ds := range lat {
		slices.Sort(ds)
		if len(ds) == 0 {
			continue
		}
		if leaders[p] == slowAddr {
			slowP50 = append(slowP50, ds[len(ds)/2])
		} else {
			fastP50 = append(fastP50, ds[len(ds)/2])
		}
	}
	if len(fastP50) == 0 || len(slowP50) == 0 {
		t.Fatalf("partitions on the slow broker %v, on the others %v: want some of each", slowP50, fastP50)
	}
	for _, d := range fastP50 {
		if d > 100*time.Millisecond {
			t.Errorf("a partition on a healthy broker has a median produce latency of %s while another broker is slow", d)
		}
	}
	for _, d := range slowP50 {
		if d < 150*time.Millisecond {
			t.Errorf("the slowed broker answers in %s: the delay did not apply", d)
		}
	}
	t.Logf("RESULT slow upstream (150 ms per chunk to one broker): median produce latency %v on its partitions, %v on the others; %d records acknowledged",
		slowP50, fastP50, s.acks.len())
	checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"slow"}, MustHold: s.acks})
}
