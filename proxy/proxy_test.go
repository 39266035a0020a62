package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/internal/testkit"
)

func TestProduceConsumeThroughProxy(t *testing.T) {
	pc := testkit.ProxiedCluster(t, kfake.SeedTopics(3, "t"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(pc.Bootstrap), kgo.ConsumeTopics("t"), kgo.ConsumerGroup("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for n < 100 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("brokers: %+v", pc.Proxy.Brokers())
}
