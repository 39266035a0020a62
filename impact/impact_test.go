package impact_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/impact"
	"github.com/amber-kafka/amber/internal/testkit"
)

// env is a cluster behind a teeing proxy, archived into memory.
type env struct{ *testkit.Teed }

func newEnv(t *testing.T, kopts ...kfake.Opt) *env { return &env{testkit.NewTeed(t, kopts...)} }

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) client(t *testing.T, opts ...kgo.Opt) *kgo.Client { return e.Client(t, opts...) }

func (e *env) archive(t *testing.T) *archive.Archive { return e.Archive(t) }

// produceWindows produces, into each of topic's partitions, `before`
// records, then (since) `in` records, then (until) `after` records, in
// batches of five, and returns since and until.
func produceWindows(t *testing.T, cl *kgo.Client, topic string, partitions int32, before, in, after int) (since, until time.Time) {
	t.Helper()
	phase := func(name string, n int) {
		for i := 0; i < n; i += 5 {
			var rs []*kgo.Record
			for p := int32(0); p < partitions; p++ {
				for k := i; k < min(i+5, n); k++ {
					rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d", name, k)})
				}
			}
			if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	phase("before", before)
	time.Sleep(2 * time.Millisecond)
	since = time.Now()
	time.Sleep(2 * time.Millisecond)
	phase("in", in)
	time.Sleep(2 * time.Millisecond)
	until = time.Now()
	time.Sleep(2 * time.Millisecond)
	phase("after", after)
	return since, until
}

// commitLog is one commit a test consumer made: the offset committed on
// a partition, and the wall clock around the commit.
type commitLog struct {
	offset        int64
	before, after time.Time
}

// consumeTo runs a consumer of group through the proxy that reads topic
// from the start, five records a poll, committing after each poll the
// records below stop[partition], until it has committed stop on every
// partition. It returns its commits per partition.
func (e *env) consumeTo(t *testing.T, group, topic string, stop map[int32]int64) map[int32][]commitLog {
	t.Helper()
	return consumeTo(t, e.Proxy.Addr(), group, topic, stop)
}

// consumeTo is env.consumeTo through any bootstrap address.
func consumeTo(t *testing.T, bootstrap, group, topic string, stop map[int32]int64) map[int32][]commitLog {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	logs := map[int32][]commitLog{}
	at := map[int32]int64{}
	done := func() bool {
		for p, s := range stop {
			if at[p] < s {
				return false
			}
		}
		return true
	}
	ctx := testCtx(t)
	for !done() {
		fs := cl.PollRecords(ctx, 5)
		if ctx.Err() != nil {
			t.Fatalf("group %s: committed %v of %v", group, at, stop)
		}
		var keep []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < stop[r.Partition] {
				keep = append(keep, r)
			}
		})
		if len(keep) == 0 {
			continue
		}
		before := time.Now()
		if err := cl.CommitRecords(ctx, keep...); err != nil {
			t.Fatalf("group %s: commit: %v", group, err)
		}
		after := time.Now()
		top := map[int32]int64{}
		for _, r := range keep {
			top[r.Partition] = max(top[r.Partition], r.Offset+1)
		}
		for p, o := range top {
			logs[p] = append(logs[p], commitLog{o, before, after})
			at[p] = o
		}
	}
	return logs
}

func within(t *testing.T, what string, got *time.Time, lo, hi time.Time) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: unset, want within [%s, %s]", what, lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
		return
	}
	// Ack times are stored in µs.
	if got.Before(lo.Truncate(time.Microsecond)) || got.After(hi) {
		t.Errorf("%s: %s, want within [%s, %s]", what, got.Format(time.RFC3339Nano), lo.Format(time.RFC3339Nano), hi.Format(time.RFC3339Nano))
	}
}

// firstCommit is the first logged commit at or past offset.
func firstCommit(logs []commitLog, past int64, strictly bool) (commitLog, bool) {
	for _, l := range logs {
		if l.offset > past || (!strictly && l.offset == past) {
			return l, true
		}
	}
	return commitLog{}, false
}

// TestImpact: four groups consume a window through the proxy: billing
// all of it, search part of it, audit up to its first record and no
// further, and etl (a transactional consume-transform-produce session)
// commits a first transaction, then aborts a second that had consumed
// everything. The report states each exactly; its JSON and the work list
// written to a topic match it.
func TestImpact(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(2, "orders", "orders-out", "compensation"))
	prod := e.client(t)
	since, until := produceWindows(t, prod, "orders", 2, 10, 20, 10)
	// Offsets in each partition: before 0-9, window 10-29, after 30-39.

	billing := e.consumeTo(t, "billing", "orders", map[int32]int64{0: 40, 1: 40})
	search := e.consumeTo(t, "search", "orders", map[int32]int64{0: 20, 1: 25})
	audit := e.consumeTo(t, "audit", "orders", map[int32]int64{0: 10, 1: 10})
	etlCommitted, etlEnd := etlSession(t, e)

	a := e.archive(t)
	rep, err := impact.Analyze(testCtx(t), impact.Options{Archive: a, Topics: []string{"orders"}, Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("report:\n%s", b)

	if rep.CommitHistory != impact.HistoryExact || len(rep.Notes) != 0 {
		t.Errorf("commit history %q, notes %q", rep.CommitHistory, rep.Notes)
	}
	if len(rep.Partitions) != 2 {
		t.Fatalf("window partitions: %+v", rep.Partitions)
	}
	for p, w := range rep.Partitions {
		if w.Topic != "orders" || w.Partition != int32(p) || w.FromOffset != 10 || w.ToOffset != 30 || w.Records != 20 || w.Unarchived != 0 {
			t.Errorf("window of partition %d: %+v, want offsets [10,30) with 20 records", p, w)
		}
		if w.FirstAckTime.Before(since) || w.LastAckTime.After(until) {
			t.Errorf("window of partition %d acknowledged %s..%s, outside %s..%s", p, w.FirstAckTime, w.LastAckTime, since, until)
		}
	}

	groups := map[string]impact.Group{}
	var names []string
	for _, g := range rep.Groups {
		groups[g.Group] = g
		names = append(names, g.Group)
	}
	if fmt.Sprint(names) != "[audit billing etl search]" {
		t.Fatalf("groups %v, want [audit billing etl search]", names)
	}

	// billing: everything, entering and passing the window at known commits.
	g := groups["billing"]
	if !g.Affected || g.Status != impact.StatusAll || g.Records != 40 || g.WindowRecords != 40 || g.Source != impact.SourceCommits {
		t.Errorf("billing: %+v", g)
	}
	var lastPass time.Time
	for _, gp := range g.Partitions {
		logs := billing[gp.Partition]
		enter, _ := firstCommit(logs, 10, true)
		pass, _ := firstCommit(logs, 30, false)
		within(t, fmt.Sprintf("billing p%d entered", gp.Partition), gp.EnteredAt, enter.before, enter.after)
		within(t, fmt.Sprintf("billing p%d passed", gp.Partition), gp.PassedAt, pass.before, pass.after)
		if gp.Status != impact.StatusAll || *gp.Consumed != (impact.Range{From: 10, To: 30}) || gp.Records != 20 || gp.Committed != 40 || gp.Highest != 40 {
			t.Errorf("billing p%d: %+v", gp.Partition, gp)
		}
		if gp.PassedAt != nil && gp.PassedAt.After(lastPass) {
			lastPass = *gp.PassedAt
		}
	}
	if g.PassedAt == nil || !g.PassedAt.Equal(lastPass) {
		t.Errorf("billing passed at %v, want the last partition's %v", g.PassedAt, lastPass)
	}

	// search: partway, on each partition to where it stopped.
	g = groups["search"]
	if !g.Affected || g.Status != impact.StatusPartial || g.Records != 10+15 || g.WindowRecords != 40 || g.PassedAt != nil {
		t.Errorf("search: %+v", g)
	}
	for _, gp := range g.Partitions {
		stop := map[int32]int64{0: 20, 1: 25}[gp.Partition]
		enter, _ := firstCommit(search[gp.Partition], 10, true)
		within(t, fmt.Sprintf("search p%d entered", gp.Partition), gp.EnteredAt, enter.before, enter.after)
		if gp.Status != impact.StatusPartial || *gp.Consumed != (impact.Range{From: 10, To: stop}) || gp.Records != stop-10 || gp.PassedAt != nil {
			t.Errorf("search p%d: %+v", gp.Partition, gp)
		}
	}

	// audit: committed exactly the window's first offset: nothing of it.
	g = groups["audit"]
	if g.Affected || g.Status != impact.StatusNone || g.Records != 0 || g.EnteredAt != nil || len(g.Partitions) != 2 {
		t.Errorf("audit: %+v", g)
	}
	for _, gp := range g.Partitions {
		if gp.Committed != 10 || gp.Consumed != nil || gp.Status != impact.StatusNone {
			t.Errorf("audit p%d: %+v", gp.Partition, gp)
		}
	}
	if len(audit[0]) == 0 {
		t.Error("audit never committed")
	}

	// etl: only its committed transaction counts, from its EndTxn; the
	// aborted one (which had consumed everything) is ignored.
	g = groups["etl"]
	if g.AbortedTxnCommits != 2 || g.PendingTxnCommits != 0 {
		t.Errorf("etl: %d aborted, %d pending transactional commits; want 2, 0", g.AbortedTxnCommits, g.PendingTxnCommits)
	}
	var etlRecords int64
	for _, gp := range g.Partitions {
		want, ok := etlCommitted[gp.Partition]
		if !ok {
			if gp.Committed != -1 || gp.Consumed != nil || gp.AbortedTxnCommits != 1 {
				t.Errorf("etl p%d (nothing committed): %+v", gp.Partition, gp)
			}
			continue
		}
		end := min(max(want, 10), 30)
		if gp.Committed != want || gp.Records != end-10 {
			t.Errorf("etl p%d: committed %d, %d records; want %d, %d", gp.Partition, gp.Committed, gp.Records, want, end-10)
		}
		if end > 10 {
			etlRecords += end - 10
			if *gp.Consumed != (impact.Range{From: 10, To: end}) {
				t.Errorf("etl p%d consumed %v", gp.Partition, gp.Consumed)
			}
			within(t, fmt.Sprintf("etl p%d entered (its transaction's commit)", gp.Partition), gp.EnteredAt, etlEnd.before, etlEnd.after)
		}
	}
	if etlRecords == 0 || g.Records != etlRecords || g.Status != impact.StatusPartial {
		t.Errorf("etl: %+v; want %d records, partial", g, etlRecords)
	}

	// The JSON round-trips to the same report.
	var back impact.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(jsonNormal(t, back), jsonNormal(t, *rep)) {
		t.Error("the JSON report does not round-trip")
	}

	// The work list: one item per affected group and partition, matching
	// the report; written to a topic, read back the same.
	items := rep.WorkList()
	var want []string
	for _, g := range rep.Groups {
		for _, gp := range g.Partitions {
			if gp.Consumed != nil {
				want = append(want, fmt.Sprintf("%s/orders/%d/%d-%d:%d", g.Group, gp.Partition, gp.Consumed.From, gp.Consumed.To, gp.Records))
			}
		}
	}
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s:%d", it.ID, it.Records))
		if !it.Window.Since.Equal(since) || !it.Window.Until.Equal(until) || it.Source != impact.SourceCommits {
			t.Errorf("item %+v", it)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("work list %v, want %v", got, want)
	}
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if err := impact.Emit(testCtx(t), direct, "compensation", items); err != nil {
		t.Fatal(err)
	}
	emitted := readWorkList(t, e.Cluster.ListenAddrs(), "compensation", len(items))
	if !reflect.DeepEqual(jsonNormal(t, emitted), jsonNormal(t, items)) {
		t.Errorf("emitted %+v\nwant %+v", emitted, items)
	}
	if err := impact.Emit(testCtx(t), direct, "no-such-topic", items[:1]); err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("emit to a missing topic: %v", err)
	}

	// --group: only that group.
	one, err := impact.Analyze(testCtx(t), impact.Options{Archive: a, Topics: []string{"orders"}, Since: since, Until: until, Group: "search"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Groups) != 1 || !reflect.DeepEqual(one.Groups[0], groups["search"]) {
		t.Errorf("--group search: %+v", one.Groups)
	}
}

// etlSession runs a GroupTransactSession through the proxy that consumes
// orders and produces to orders-out: a first transaction polls until it
// has read offset 14 of a partition and commits; a second polls the rest
// and tries to commit, but the coordinator answers its heartbeat with
// ILLEGAL_GENERATION after the offsets are sent, so it aborts. It
// returns the offsets the first committed and the wall clock around its
// End.
func etlSession(t *testing.T, e *env) (map[int32]int64, commitLog) {
	t.Helper()
	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(e.Proxy.Addr()), kgo.TransactionalID("etl-tx"),
		kgo.ConsumerGroup("etl"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond), kgo.HeartbeatInterval(20*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	polled := map[int32]int64{}
	poll := func(until func() bool) {
		for !until() {
			fs := s.PollRecords(ctx, 1)
			if ctx.Err() != nil {
				t.Fatalf("etl: polled %v", polled)
			}
			fs.EachRecord(func(r *kgo.Record) {
				polled[r.Partition] = r.Offset + 1
				s.Produce(ctx, &kgo.Record{Topic: "orders-out", Partition: r.Partition, Value: r.Value}, nil)
			})
		}
	}

	if err := s.Begin(); err != nil {
		t.Fatal(err)
	}
	poll(func() bool { return polled[0] > 14 || polled[1] > 14 })
	first := map[int32]int64{}
	for p, o := range polled {
		first[p] = o
	}
	var end commitLog
	end.before = time.Now()
	if committed, err := s.End(ctx, kgo.TryCommit); err != nil || !committed {
		t.Fatalf("etl first transaction: committed %v, %v", committed, err)
	}
	end.after = time.Now()

	if err := s.Begin(); err != nil {
		t.Fatal(err)
	}
	poll(func() bool { return polled[0] == 40 && polled[1] == 40 })
	e.Cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.SetVersion(req.GetVersion())
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp, nil, true
	})
	if committed, err := s.End(ctx, kgo.TryCommit); err != nil || committed {
		t.Fatalf("etl second transaction: committed %v, %v; want an abort", committed, err)
	}
	return first, end
}

// readWorkList reads n work items from topic.
func readWorkList(t *testing.T, addrs []string, topic string, n int) []impact.WorkItem {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	var out []impact.WorkItem
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d work items", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var it impact.WorkItem
			if err := json.Unmarshal(r.Value, &it); err != nil {
				t.Errorf("work item %q: %v", r.Value, err)
			}
			if string(r.Key) != it.Group {
				t.Errorf("work item key %q, group %q", r.Key, it.Group)
			}
			out = append(out, it)
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func jsonNormal(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// TestImpactWithoutCommitHistory: groups that commit straight to the
// brokers leave no history; the report says so and what to do. Once a
// backfill has snapshotted their offsets, it answers from the snapshots
// and says that the answer is coarser.
func TestImpactWithoutCommitHistory(t *testing.T) {
	e := newEnv(t, kfake.SeedTopics(1, "orders"))
	since, until := produceWindows(t, e.client(t), "orders", 1, 10, 20, 10)
	direct := e.Cluster.ListenAddrs()[0]
	consumeTo(t, direct, "around", "orders", map[int32]int64{0: 25})
	consumeTo(t, direct, "behind", "orders", map[int32]int64{0: 5})

	o := impact.Options{Topics: []string{"orders"}, Since: since, Until: until}
	o.Archive = e.archive(t)
	rep, err := impact.Analyze(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CommitHistory != impact.HistoryNone || len(rep.Groups) != 0 || len(rep.Notes) != 1 ||
		!strings.Contains(rep.Notes[0], "route consumers through an Amber proxy") || !strings.Contains(rep.Notes[0], "amber backfill") {
		t.Fatalf("without history: %+v", rep)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b, err := archive.NewBackfiller(archive.BackfillOptions{Client: cl, Sink: &archive.JournalSink{Journal: e.Journal}, Store: e.Store,
		Journal: e.Journal, Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	snapAt := time.Now()
	if _, err := b.Step(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	o.Archive = e.archive(t)
	if rep, err = impact.Analyze(testCtx(t), o); err != nil {
		t.Fatal(err)
	}
	if rep.CommitHistory != impact.HistorySnapshots || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "coarser") {
		t.Errorf("with snapshots: %s %q", rep.CommitHistory, rep.Notes)
	}
	var got []string
	for _, g := range rep.Groups {
		p := g.Partitions[0]
		got = append(got, fmt.Sprintf("%s %s %s %d %v", g.Group, g.Source, g.Status, g.Records, p.Consumed))
		if g.Affected && (p.EnteredAt == nil || p.EnteredAt.Before(snapAt)) {
			t.Errorf("%s entered at %v, want the snapshot's time (after %s)", g.Group, p.EnteredAt, snapAt)
		}
	}
	if want := "[around snapshots partial 15 &{10 25} behind snapshots none 0 <nil>]"; fmt.Sprint(got) != want {
		t.Errorf("groups %v, want %s", got, want)
	}
}
