package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
	"github.com/amber-kafka/amber/proxy"
)

// crcTee observes Produce and checks, at the moment it is shown a request,
// that every batch in it is intact. The request aliases a pooled frame
// buffer; if the proxy let that buffer be reused before the tee saw the
// response, another frame would overwrite it and a CRC would fail (and the
// race detector would see the two goroutines).
type crcTee struct {
	records atomic.Int64
	mu      sync.Mutex
	errs    []error
}

func (*crcTee) Keys() []int16                       { return []int16{0} }
func (*crcTee) Prepare(kmsg.Request) []kmsg.Request { return nil }

func (t *crcTee) Observe(x *proxy.Exchange) func() {
	req := x.Request.(*kmsg.ProduceRequest)
	for _, tp := range req.Topics {
		for _, p := range tp.Partitions {
			err := protocol.SplitBatches(p.Records, func(h protocol.BatchHeader, b []byte) error {
				t.records.Add(int64(h.NumRecords))
				return protocol.CheckCRC(&h, b)
			})
			if err != nil {
				t.mu.Lock()
				t.errs = append(t.errs, fmt.Errorf("%s/%d: %w", tp.Topic, p.Partition, err))
				t.mu.Unlock()
			}
		}
	}
	return nil
}

// TestTeeSeesIntactBatches produces from several clients at once, with
// acks=all and acks=0 and records of many sizes (so frames of many pool
// classes come and go), and checks that the tee saw every record in an
// intact batch.
func TestTeeSeesIntactBatches(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(4, "t"))
	tee := &crcTee{}
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), Tee: tee})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const clients, perClient = 4, 2000
	var wg sync.WaitGroup
	for i := range clients {
		opts := []kgo.Opt{kgo.SeedBrokers(p.Addr()), kgo.DefaultProduceTopic("t"), kgo.ProducerLinger(time.Millisecond)}
		if i == 0 {
			opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				v := strings.Repeat(string(rune('a'+i)), 1+(j*37)%5000)
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("client %d: %v", i, err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Errorf("client %d: flush: %v", i, err)
			}
		}()
	}
	wg.Wait()
	// acks=0 requests are observed as they are forwarded, which may be
	// just after the client's flush returns.
	for deadline := time.Now().Add(5 * time.Second); tee.records.Load() < clients*perClient && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	tee.mu.Lock()
	defer tee.mu.Unlock()
	for _, err := range tee.errs {
		t.Error(err)
	}
	if got := tee.records.Load(); got != clients*perClient {
		t.Errorf("tee saw %d records, want %d", got, clients*perClient)
	}
}
