package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/restore"
)

// topicDigest reads every record of a topic (read_committed) and returns
// them per partition, in order, as comparable strings.
func topicDigest(t *testing.T, addrs []string, topic string) map[int32][]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	out := map[int32][]string{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v still unread", topic, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], fmt.Sprintf("%q %q %v %d", r.Key, r.Value, r.Headers, r.Timestamp.UnixMilli()))
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

// TestRestoreCommandKill9Resumes archives through a proxy process, then
// restores with the amber binary, killed with SIGKILL midway; run again,
// it completes, and the target equals the source record for record.
func TestRestoreCommandKill9Resumes(t *testing.T) {
	src := testkit.NewCluster(t, kfake.SeedTopics(3, "events"))
	dst := testkit.NewCluster(t)
	data := t.TempDir()
	listen := freePort(t)
	cmd, _ := startProxyEnv(t, nil, "--upstream", strings.Join(src.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "", "--data", data)
	waitListening(t, listen)
	cl, err := kgo.NewClient(kgo.SeedBrokers(listen), kgo.DefaultProduceTopic("events"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 300; i++ { // ~3 MB in 300 batches
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{byte(i)}, 10000)}, nil)
		if i%10 == 9 {
			cl.Flush(ctx)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stopProxy(t, cmd)

	args := []string{"restore", "--archive", filepath.Join(data, "archive"), "--bootstrap", strings.Join(dst.ListenAddrs(), ","), "--topic", "events:events-restored"}
	slow, out := startAmber(t, append(args, "--throttle", "1")...) // ~3 s at 1 MB/s
	adm, _ := kgo.NewClient(kgo.SeedBrokers(dst.ListenAddrs()...))
	defer adm.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, "events-restored")
		var n int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		}
		if n > 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restore wrote nothing in 20 s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	slow.Process.Signal(syscall.SIGKILL)
	slow.Wait()

	report := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, err := amberEnv(t, nil, append(args, "--report", report)...)
	if err != nil {
		t.Fatalf("rerun: %v\n%s%s", err, stdout, stderr)
	}
	want, got := topicDigest(t, src.ListenAddrs(), "events"), topicDigest(t, dst.ListenAddrs(), "events-restored")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		for p := range want {
			t.Errorf("partition %d: %d records restored, %d in the source", p, len(got[p]), len(want[p]))
		}
		t.Fatal("target differs from source after the resumed restore")
	}
	var rep restore.Report
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	resumed := false
	for _, p := range rep.Topics[0].Partitions {
		resumed = resumed || p.Resumed > 0
		if len(p.OffsetMap) == 0 {
			t.Errorf("partition %d has no offset map", p.Partition)
		}
	}
	if !resumed {
		t.Error("the report shows no resumed partition")
	}
	if !strings.Contains(stdout, "restored 300 records") {
		t.Errorf("summary:\n%s", stdout)
	}
}
