package impact_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/impact"
	"github.com/amber-kafka/amber/internal/testkit"
)

// TestImpactTopicCreatedAgain: a topic deleted and created again is two
// topics at the same offsets. A window in the new one counts the new
// topic's records only, and a group's commits only on it: group "old"
// committed far past the window's offsets, but on the deleted topic, so
// it consumed nothing of the window; "new" consumed 3 of its 5 records.
// A window across the deletion is refused.
func TestImpactTopicCreatedAgain(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "t"))
	produce := func(cl *kgo.Client, prefix string, n int) {
		for i := range n {
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, "%s-%d", prefix, i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(cl *kgo.Client, group string, at int64) {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := kadm.NewClient(cl).CommitOffsets(testCtx(t), group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cl := e.client(t)
	produce(cl, "old", 20)
	commit(cl, "old", 20)
	time.Sleep(2 * time.Millisecond)
	beforeDelete := time.Now()
	testkit.RecreateTopic(t, cl, "t")
	time.Sleep(2 * time.Millisecond)
	since := time.Now()
	cl2 := e.client(t) // cl still knows the deleted topic's id
	produce(cl2, "new", 5)
	until := time.Now()
	commit(cl2, "new", 3)

	a := e.archive(t)
	rep, err := impact.Analyze(testCtx(t), impact.Options{Archive: a, Topics: []string{"t"}, Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Partitions) != 1 || rep.Partitions[0].FromOffset != 0 || rep.Partitions[0].ToOffset != 5 {
		t.Fatalf("window %+v, want offsets [0,5) of the new topic", rep.Partitions)
	}
	got := map[string]string{}
	for _, g := range rep.Groups {
		got[g.Group] = fmt.Sprintf("%s %d/%d", g.Status, g.Records, g.WindowRecords)
	}
	if fmt.Sprint(got) != "map[new:partial 3/5]" {
		t.Errorf("groups %v, want only new, partial 3/5", got)
	}

	_, err = impact.Analyze(testCtx(t), impact.Options{Archive: a, Topics: []string{"t"}, Since: beforeDelete.Add(-time.Hour), Until: until})
	if !errors.Is(err, impact.ErrWindowSpansDeletion) {
		t.Errorf("a window across the deletion: %v, want ErrWindowSpansDeletion", err)
	}
}
