package reliability_test

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
)

// freePorts reserves n free TCP ports on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// TestBrokersRestart closes the whole kfake cluster (persisted in a data
// directory) while an idempotent producer streams through the
// proxy, and reopens it on the same ports and directory half a second
// later: every broker restarts. The proxy keeps its listeners, clients
// reconnect through it, and every acknowledged record is archived. A
// produce request the brokers applied just before closing may lose its
// response on the way back: that batch is in the cluster and not in the
// archive (a hole the backfill fetches), so the comparison runs after a
// backfill.
func TestBrokersRestart(t *testing.T) {
	dir := t.TempDir()
	ports := freePorts(t, 3)
	opts := []kfake.Opt{kfake.NumBrokers(3), kfake.Ports(ports...), kfake.DataDir(dir), kfake.SeedTopics(3, "restart")}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addrs := c.ListenAddrs()
	store := memstore.New()
	n := startNode(t, nodeOptions{Upstreams: addrs, Store: store})
	s := startStream(t, []string{n.Addr()}, "restart", "restart", 8)
	s.waitAcks(t, 300, 30*time.Second)
	c.Close()
	time.Sleep(500 * time.Millisecond) // the brokers are down
	if c, err = kfake.NewCluster(opts...); err != nil {
		t.Fatalf("reopen the cluster: %v", err)
	}
	reopened := time.Now()
	s.progress(t, 300, 60*time.Second)
	back := time.Since(reopened)
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT brokers restarted: %d records acknowledged; 300 more %s after the brokers came back (franz-go's reconnect and 5 s metadata minimum age); proxy listeners %d",
		s.acks.len(), back.Round(time.Millisecond), len(n.p.Brokers()))
	checkArchive(t, check{Store: store, Cluster: addrs, Topics: []string{"restart"}, MustHold: s.acks, Backfill: true})
}

// TestClusterChangesUnderLoad changes the cluster under an idempotent
// producer streaming through the proxy: leaders move (twice), a broker
// is added and partitions are moved to it, one of the original brokers
// is removed, leaders move again. The proxy must follow (new listeners, rewritten addresses) and
// the archive must hold every acknowledged record and equal the cluster.
// (A single broker bounced with RemoveNode and AddNode on its port is not
// tested: kfake keeps serving the removed broker's open connections as a
// broker that leads nothing, and franz-go stalls on them even without the
// proxy. TestBrokersRestart restarts brokers for real.)
func TestClusterChangesUnderLoad(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(6, "moves"))
	store := memstore.New()
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store})
	s := startStream(t, []string{n.Addr()}, "moves", "moves", 8)
	s.waitAcks(t, 300, 30*time.Second)
	step := func(what string, change func() error) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		s.progress(t, 300, 30*time.Second)
	}
	step("shuffle leaders", func() error { c.ShufflePartitionLeaders(); return nil })
	step("shuffle leaders again", func() error { c.ShufflePartitionLeaders(); return nil })
	step("add broker 7 and move half the partitions to it", func() error {
		if _, _, err := c.AddNode(7, 0); err != nil {
			return err
		}
		for _, p := range []int32{0, 2, 4} {
			if err := c.MoveTopicPartition("moves", p, 7); err != nil {
				return err
			}
		}
		return nil
	})
	step("remove broker 0", func() error { return c.RemoveNode(0) })
	step("shuffle leaders over the new set", func() error { c.ShufflePartitionLeaders(); return nil })
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	if err := n.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("RESULT cluster changes: %d records acknowledged across 3 leader shuffles, a broker added, one removed; the proxy has %d broker listeners",
		s.acks.len(), len(n.p.Brokers()))
	checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"moves"}, MustHold: s.acks})
}
