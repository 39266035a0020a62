package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/proxy"
	"github.com/amber-kafka/amber/restore"
)

const demoExamples = `  amber demo                      # a few seconds; leaves nothing running
  amber demo --records 50000 --keep-data /tmp/amber-demo`

// runDemo is Amber's main job on an embedded default: a three-broker
// cluster (kfake), the proxy in front archiving to a local file archive,
// traffic through it (a producer, transactions, a consumer group), then a
// restore of one topic into a renamed topic up to a point in time with its
// group moved, and a check that the records match.
func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[--records N] [--keep-data DIR]", demoExamples, stdout)
	records := fs.Int("records", 10000, "records produced before the point in time (and a fifth more after it)")
	keep := fs.String("keep-data", "", "keep the proxy's data directory (journal and archive) here instead of a temporary one")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *records < 10 {
		return usagef("--records %d: want at least 10", *records)
	}
	log, err := newLogger(*logLevel, "console", stderr)
	if err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "amber-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return demo(ctx, dir, *records, stdout, log)
}

func demo(ctx context.Context, dir string, records int, out io.Writer, log *zap.Logger) error {
	start := time.Now()
	const topic, group = "orders", "billing"
	step := func(format string, args ...any) { fmt.Fprintf(out, "• "+format+"\n", args...) }

	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, topic), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		return fmt.Errorf("start embedded cluster: %w", err)
	}
	defer cluster.Close()

	// The proxy, as `amber proxy` runs it: journal, tee, uploader.
	writer, err := archive.LoadWriterID(dir)
	if err != nil {
		return err
	}
	journal, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(dir, "journal"), Logger: log})
	if err != nil {
		return err
	}
	defer journal.Close()
	store, err := file.New(filepath.Join(dir, "archive"))
	if err != nil {
		return err
	}
	uploader, err := archive.NewUploader(archive.UploaderOptions{Journal: journal, Store: store, WriterID: writer, Logger: log})
	if err != nil {
		return err
	}
	tee := archive.NewTee(journal, archive.TeeOptions{Durability: archive.Sync, Logger: log})
	p, err := proxy.New(proxy.Options{Upstreams: cluster.ListenAddrs(), Listen: "127.0.0.1:0", Logger: log, Tee: tee, StateDir: filepath.Join(dir, "proxy")})
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Close()
	step("embedded cluster: 3 brokers; amber proxy at %s archiving to %s", p.Addr(), store)

	// Every address the clients dial is recorded: none may be a broker's.
	var dialed sync.Map
	dialer := func(ctx context.Context, network, host string) (net.Conn, error) {
		dialed.Store(host, true)
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}
	client := func(opts ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.Addr()), kgo.Dialer(dialer)}, opts...)...)
	}
	prod, err := client(kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer prod.Close()
	produce := func(n int, tag string) error {
		var (
			mu   sync.Mutex
			errs error
			wg   sync.WaitGroup
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "order-%s-%d", tag, i), Value: fmt.Appendf(nil, `{"order":%d,"cents":%d,"phase":%q}`, i, 100+i%900, tag),
				Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("demo")}}}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					errs = errors.Join(errs, err)
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
		return errs
	}
	if err := produce(records, "a"); err != nil {
		return fmt.Errorf("produce through the proxy: %w", err)
	}
	txn, err := client(kgo.TransactionalID("demo-txn"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer txn.Close()
	for _, commit := range []bool{true, false} {
		txn.BeginTransaction()
		for i := 0; i < 10; i++ {
			txn.Produce(ctx, &kgo.Record{Key: []byte("txn"), Value: fmt.Appendf(nil, "commit=%v #%d", commit, i)}, nil)
		}
		if err := txn.Flush(ctx); err != nil {
			return err
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
	}
	step("produced %d records to %q, one transaction committed and one aborted (10 records each)", records, topic)

	// The billing group consumes about half, commits, and that is where it
	// stands at the point in time.
	cons, err := client(kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	consumed := 0
	for consumed < records/2 {
		fs := cons.PollRecords(ctx, records/2-consumed)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("consume through the proxy: %w", err)
		}
		if err := cons.CommitRecords(ctx, fs.Records()...); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		consumed += fs.NumRecords()
	}
	cons.Close() // leaves the group: its position is its committed offsets
	step("group %q consumed and committed %d records", group, consumed)

	time.Sleep(10 * time.Millisecond)
	cut := time.Now()
	time.Sleep(10 * time.Millisecond)
	step("point in time: %s (think: the database backup)", cut.Format(time.RFC3339Nano))
	if err := produce(records/5, "b"); err != nil {
		return err
	}
	step("produced %d more records after it", records/5)

	journal.Commit()
	if err := uploader.Flush(ctx); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	a, err := archive.OpenArchive(ctx, store, nil)
	if err != nil {
		return err
	}
	cov := a.Coverage()
	var archived, holes int64
	for _, c := range cov {
		archived += c.Records
		for _, h := range c.Holes {
			holes += h[1] - h[0]
		}
	}
	us := uploader.Stats()
	step("archived %d records in %d objects (%s); %d offsets are holes: transaction markers, which brokers write, not clients",
		archived, us.Objects, humanBytes(us.Bytes), holes)

	// Restore orders as it was at the point in time, into orders-restored,
	// and move the billing group to match.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	rep, err := restore.Run(ctx, restore.Options{
		Archive: a, Client: admCl, Topics: []restore.TopicMapping{restore.MustTopicMapping(topic + ":" + topic + "-restored")},
		Until: cut, UntilOffset: -1, Partition: -1, Groups: []restore.GroupMapping{{Source: group, Target: group + "-restored"}}, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var restored, skipped int64
	for _, pr := range rep.Topics[0].Partitions {
		restored += pr.Records
		for _, n := range pr.Skipped {
			skipped += n
		}
	}
	step("restored %d records into %q up to the point in time (%d archived records left out: after the cut or aborted)", restored, topic+"-restored", skipped)

	// Check: the restored topic holds exactly the committed records
	// acknowledged before the cut, in order; the restored group resumes
	// exactly where billing stood.
	src, err := readTopic(ctx, cluster.ListenAddrs(), topic, func(r *kgo.Record) bool { return string(r.Key) == "txn" || string(r.Key[:8]) == "order-a-" })
	if err != nil {
		return err
	}
	dst, err := readTopic(ctx, cluster.ListenAddrs(), topic+"-restored", nil)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(admCl)
	srcGroup, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	dstGroup, err := adm.FetchOffsets(ctx, group+"-restored")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPARTITION\tSOURCE (BEFORE CUT)\tRESTORED\tMATCH\tBILLING NEXT\tRESTORED GROUP NEXT\tSAME RECORD")
	mismatch := 0
	for part := int32(0); part < 6; part++ {
		s, d := src[part], dst[part]
		match := len(s) == len(d)
		for i := 0; match && i < len(s); i++ {
			match = s[i].same(d[i])
		}
		so, _ := srcGroup.Lookup(topic, part)
		do, _ := dstGroup.Lookup(topic+"-restored", part)
		next := func(rs []rec, at int64, byOffset bool) string {
			for _, r := range rs {
				if (byOffset && r.offset >= at) || (!byOffset && r.offset == at) {
					return string(r.key)
				}
			}
			return "(end)"
		}
		srcNext, dstNext := next(s, so.At, true), next(d, do.At, false)
		if !match || srcNext != dstNext {
			mismatch++
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%v\t%s\t%s\t%v\n", part, len(s), len(d), match, srcNext, dstNext, srcNext == dstNext)
	}
	tw.Flush()

	real := map[string]bool{}
	for _, addr := range cluster.ListenAddrs() {
		real[addr] = true
	}
	leaked := 0
	dialed.Range(func(k, _ any) bool {
		if real[k.(string)] {
			leaked++
		}
		return true
	})
	switch {
	case leaked > 0:
		return fmt.Errorf("clients dialed %d real broker addresses: the proxy leaked them", leaked)
	case mismatch > 0:
		return fmt.Errorf("%d partitions differ between source and restore", mismatch)
	}
	fmt.Fprintf(out, "\nevery partition matches record for record (key, value, headers, timestamp), and the restored\ngroup resumes at the record billing would have read next. Clients only ever saw the proxy.\ndone in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// rec is a record as the demo compares it.
type rec struct {
	offset     int64
	key, value []byte
	headers    string
	ts         int64
}

func (r rec) same(o rec) bool {
	return string(r.key) == string(o.key) && string(r.value) == string(o.value) && r.headers == o.headers && r.ts == o.ts
}

// readTopic reads a topic's committed records per partition, keeping those
// keep accepts (all if nil).
func readTopic(ctx context.Context, addrs []string, topic string, keep func(*kgo.Record) bool) (map[int32][]rec, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	out := map[int32][]rec{}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(left) > 0 && rctx.Err() == nil {
		fs := cl.PollFetches(rctx)
		fs.EachRecord(func(r *kgo.Record) {
			if keep == nil || keep(r) {
				out[r.Partition] = append(out[r.Partition], rec{r.Offset, r.Key, r.Value, fmt.Sprint(r.Headers), r.Timestamp.UnixMilli()})
			}
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
		// A partition ending in a marker or aborted data is never
		// "reached" by a read_committed consumer: stop once fetches come
		// back empty.
		if fs.NumRecords() == 0 && fs.Err0() == nil {
			break
		}
	}
	return out, nil
}
