package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/proxy"
)

const demoExamples = `  amber demo              # about a second; leaves nothing running
  amber demo --records 50000`

// runDemo starts an embedded three-broker cluster (kfake), the proxy in
// front of it, and sample traffic through the proxy: a producer, a
// transactional producer and a consumer group. It prints what happened.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--records N]", demoExamples, stdout)
	records := fs.Int("records", 10000, "records to produce")
	logLevel := fs.String("log-level", "warn", "proxy log level")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *records < 1 {
		return usagef("--records %d: want at least 1", *records)
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return demo(ctx, *records, stdout, log)
}

func demo(ctx context.Context, records int, out io.Writer, log *zap.Logger) error {
	start := time.Now()
	const topic, group = "orders", "billing"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, topic), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		return fmt.Errorf("start embedded cluster: %w", err)
	}
	defer cluster.Close()
	p, err := proxy.New(proxy.Options{Upstreams: cluster.ListenAddrs(), Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(out, "embedded cluster: 3 brokers at %v\n", cluster.ListenAddrs())
	fmt.Fprintf(out, "amber proxy:      bootstrap %s\n\n", p.Addr())

	// Every address the clients dial is recorded: none may be a broker's.
	var dialed sync.Map
	dialer := func(ctx context.Context, network, host string) (net.Conn, error) {
		dialed.Store(host, true)
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.Dialer(dialer))
	if err != nil {
		return err
	}
	defer cl.Close()
	var produceErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < records; i++ {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "order-%d", i), Value: fmt.Appendf(nil, `{"order":%d,"cents":%d}`, i, 100+i%900),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("demo")}}}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				produceErr = errors.Join(produceErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if produceErr != nil {
		return fmt.Errorf("produce through the proxy: %w", produceErr)
	}
	fmt.Fprintf(out, "produced %d records to %q through the proxy\n", records, topic)

	txn, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.Dialer(dialer), kgo.TransactionalID("demo-txn"))
	if err != nil {
		return err
	}
	defer txn.Close()
	for _, commit := range []bool{true, false} {
		if err := txn.BeginTransaction(); err != nil {
			return err
		}
		for i := 0; i < 10; i++ {
			txn.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("txn"), Value: fmt.Appendf(nil, "commit=%v #%d", commit, i)}, nil)
		}
		if err := txn.Flush(ctx); err != nil {
			return fmt.Errorf("flush transaction: %w", err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
	}
	fmt.Fprintln(out, "one transaction committed, one aborted (10 records each)")

	consumer, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.Dialer(dialer), kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(group), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	defer consumer.Close()
	want := records + 10
	got := 0
	for got < want {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consume through the proxy (%d of %d): %w", got, want, err)
		}
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	fmt.Fprintf(out, "consumer group %q read %d committed records and committed its offsets\n\n", group, got)

	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tEND OFFSET\tCOMMITTED\tLAG")
	for _, o := range ends.Offsets().Sorted() {
		c, _ := committed.Lookup(topic, o.Partition)
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", o.Partition, o.At, c.At, o.At-c.At)
	}
	tw.Flush()
	fmt.Fprintln(out, "(lag on a partition the transactions wrote to is the aborted records and the\n transaction markers after the last committed record: read_committed skips them)")

	fmt.Fprintln(out, "\nbrokers as clients see them:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREAL ADDRESS\tPROXY ADDRESS")
	for _, b := range p.Brokers() {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", b.NodeID, b.Upstream, b.Advertised)
	}
	tw.Flush()
	real := map[string]bool{}
	for _, a := range cluster.ListenAddrs() {
		real[a] = true
	}
	leaked := 0
	n := 0
	dialed.Range(func(k, _ any) bool {
		n++
		if real[k.(string)] {
			leaked++
		}
		return true
	})
	if leaked > 0 {
		return fmt.Errorf("clients dialed %d real broker addresses: the proxy leaked them", leaked)
	}
	fmt.Fprintf(out, "\nclients dialed %d addresses, all of them the proxy's; none was a broker's.\n", n)
	fmt.Fprintf(out, "done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
