package restore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/restore"
)

// TestRestoreReportsWhatTheRecreatedTopicMisses: a topic deleted and
// created again is two topics at the same offsets, and each has a record
// produced around the proxy: the old one at offset 1, the new one at 2.
// The other topic's batch sits at each hole's offset, so counted together
// the archive has no hole at all (what restore used to report). Each
// restore reports its own topic's hole.
func TestRestoreReportsWhatTheRecreatedTopicMisses(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "t"))
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	produce := func(cl *kgo.Client, values ...string) {
		for _, v := range values {
			if err := cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl := e.client(t)
	produce(cl, "old-0")
	produce(direct, "old-1") // around the proxy: a hole of the old topic
	produce(cl, "old-2", "old-3")
	time.Sleep(5 * time.Millisecond)
	beforeDelete := time.Now()
	time.Sleep(5 * time.Millisecond)
	testkit.RecreateTopic(t, cl, "t")
	// New clients: the first ones still know the deleted topic's id.
	cl2 := e.client(t)
	direct2, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct2.Close()
	produce(cl2, "new-0", "new-1")
	produce(direct2, "new-2") // a hole of the new topic
	produce(cl2, "new-3")

	rep, err := e.restore(t, restore.Options{}, "t:t-new")
	if err != nil {
		t.Fatal(err)
	}
	if pr := rep.Topics[0].Partitions[0]; fmt.Sprint(pr.Missing) != "[{2 3 hole}]" || pr.Records != 3 {
		t.Errorf("the re-created topic: restored %d records, missing %v; want 3 and [{2 3 hole}]", pr.Records, pr.Missing)
	}

	// Into another cluster: after one restore this kfake does not list
	// topics created on it later (see TestRestoreRecreatedTopic).
	e.dst = testkit.NewCluster(t)
	if e.dstCl, err = kgo.NewClient(kgo.SeedBrokers(e.dst.ListenAddrs()...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dstCl.Close)
	rep, err = e.restore(t, restore.Options{Until: beforeDelete}, "t:t-old")
	if err != nil {
		t.Fatal(err)
	}
	if pr := rep.Topics[0].Partitions[0]; fmt.Sprint(pr.Missing) != "[{1 2 hole}]" || pr.Records != 3 {
		t.Errorf("the deleted topic: restored %d records, missing %v; want 3 and [{1 2 hole}]", pr.Records, pr.Missing)
	}
}
