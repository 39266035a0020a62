package reliability_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/restore"
)

// sourceArchive archives n records produced to topic (partitions
// partitions) through a node, and opens the archive.
func sourceArchive(t *testing.T, topic string, partitions int32, n int) *archive.Archive {
	t.Helper()
	c := testkit.NewCluster(t, kfake.SeedTopics(partitions, topic))
	store := memstore.New()
	node := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store})
	s := startStream(t, []string{node.Addr()}, topic, "src", 16, kgo.ProducerBatchMaxBytes(16<<10))
	s.waitAcks(t, n, time.Minute)
	if errs := s.finish(); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if err := node.stop(); err != nil {
		t.Fatal(err)
	}
	a, err := archive.OpenArchive(testCtx(t, time.Minute), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func restoreOpts(a *archive.Archive, cl *kgo.Client, mapping string) restore.Options {
	return restore.Options{Archive: a, Client: cl, Topics: []restore.TopicMapping{restore.MustTopicMapping(mapping)},
		UntilOffset: -1, Partition: -1}
}

// endOffsets sums a topic's end offsets on a cluster.
func endOffsets(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += max(o.Offset, 0) })
	return n
}

// TestRestoreIntoFewerPartitions: a target topic with fewer partitions
// than the archive is refused before anything is written, with an error
// that says what to do.
func TestRestoreIntoFewerPartitions(t *testing.T) {
	a := sourceArchive(t, "wide", 6, 300)
	dst := testkit.NewCluster(t, kfake.SeedTopics(2, "narrow"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(dst.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = restore.Run(testCtx(t, time.Minute), restoreOpts(a, cl, "wide:narrow"))
	if err == nil || !strings.Contains(err.Error(), "has 2 partitions, the archive has 6") || !strings.Contains(err.Error(), "restore into a new topic") {
		t.Fatalf("restore into 2 of 6 partitions: %v", err)
	}
	if n := endOffsets(t, cl, "narrow"); n != 0 {
		t.Errorf("%d records written into the refused target", n)
	}
	t.Logf("RESULT restore into fewer partitions: refused before writing: %v", err)
}

// TestRestoreIntoClusterThatDeniesWrites: a target cluster whose ACLs let
// the restore's user describe and create the topic but not write to it.
// The restore must stop with the broker's authorization error, promptly
// (it is not retriable), and write nothing; a user who may not create
// topics is refused at creation.
func TestRestoreIntoClusterThatDeniesWrites(t *testing.T) {
	a := sourceArchive(t, "orders", 3, 300)
	allow := func(res kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: res, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	dst := testkit.NewCluster(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin-pass"),
		kfake.User("PLAIN", "reader", "reader-pass",
			allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationCreate),
			allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationIdempotentWrite),
			allow(kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationDescribe),
			allow(kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLOperationCreate)),
		kfake.User("PLAIN", "nobody", "nobody-pass"))
	client := func(user, pass string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(dst.ListenAddrs()...), kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	start := time.Now()
	rep, err := restore.Run(testCtx(t, 2*time.Minute), restoreOpts(a, client("reader", "reader-pass"), "orders"))
	took := time.Since(start)
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("restore without the Write ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if took > 30*time.Second {
		t.Errorf("the refusal took %s: an authorization error is not worth retrying", took)
	}
	if strings.Contains(err.Error(), "context canceled") {
		t.Errorf("the error lists the partitions cancelled after the failure: %v", err)
	}
	var written int64
	if rep != nil {
		for _, tr := range rep.Topics {
			for _, p := range tr.Partitions {
				written += p.Records
			}
		}
	}
	admin := client("admin", "admin-pass")
	if n := endOffsets(t, admin, "orders"); n != 0 || written != 0 {
		t.Errorf("%d records in the target, the report says %d written", n, written)
	}
	t.Logf("RESULT restore into a cluster denying writes: refused after %s: %v", took.Round(time.Millisecond), err)

	_, err = restore.Run(testCtx(t, time.Minute), restoreOpts(a, client("nobody", "nobody-pass"), "orders:orders2"))
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("restore by a user who may not create the topic: %v", err)
	}
	t.Logf("RESULT restore by a user who may not create topics: %v", err)
}

// TestRestoreTargetDeletedMidway deletes the target topic while a
// throttled restore writes into it. The restore must stop with an error
// naming the topic in bounded time (not hang, not recreate the topic
// behind the operator's back); the report says what was written.
func TestRestoreTargetDeletedMidway(t *testing.T) {
	a := sourceArchive(t, "events", 3, 3000)
	dst := testkit.NewCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(dst.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o := restoreOpts(a, cl, "events:events-copy")
	o.ThrottleBytes = 20 << 10 // the archive holds ~60 KiB: a few seconds
	type result struct {
		rep *restore.Report
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	go func() { rep, err := restore.Run(ctx, o); done <- result{rep, err} }()
	var early *result
	waitFor(t, 30*time.Second, "the restore to write", func() bool {
		select {
		case r := <-done:
			early = &r
			return true
		default:
		}
		// Asked of kfake itself: a client asking about the topic before
		// the restore creates it would cache "unknown topic" for 5 s.
		var n int64
		for _, p := range dst.PartitionInfos("events-copy") {
			n += p.HighWatermark
		}
		return n > 100
	})
	if early != nil {
		t.Fatalf("the restore ended before the deletion: %v", early.err)
	}
	if err := dst.DeleteTopic("events-copy"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Since(start)
	r := <-done
	took := time.Since(start) - deleted
	if r.err == nil {
		t.Fatalf("the restore succeeded although its target was deleted midway")
	}
	if !strings.Contains(r.err.Error(), "events-copy") || !strings.Contains(r.err.Error(), "deleted") {
		t.Errorf("the error does not say the target was deleted: %v", r.err)
	}
	if took > 30*time.Second {
		t.Errorf("the restore took %s to give up on a deleted target", took)
	}
	if strings.Contains(r.err.Error(), "context canceled") {
		t.Errorf("the error lists the partitions cancelled after the failure: %v", r.err)
	}
	if dst.TopicInfo("events-copy") != nil {
		t.Errorf("the target topic exists again after it was deleted")
	}
	t.Logf("RESULT restore target deleted midway: the restore stopped %s after the deletion: %v", took.Round(time.Millisecond), r.err)
}
