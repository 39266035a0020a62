package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/impact"
	"github.com/amber-kafka/amber/internal/testkit"
)

func TestImpactUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  []string
	}{
		{[]string{"impact"}, []string{"--archive is required", "no topic", "--since", "--until"}},
		{[]string{"impact", "--archive", "x", "--topic", "t", "--since", "soon", "--until", "later"}, []string{`time "soon"`, `time "later"`}},
		{[]string{"impact", "--archive", "x", "--topic", "t,t", "--since", "2026-01-02", "--until", "2026-01-01"}, []string{"given twice", "is before --since"}},
		{[]string{"impact", "--archive", "x", "--topic", "t", "--since", "2h", "--until", "1h", "--emit-compensation", "work"}, []string{"needs --bootstrap"}},
		{[]string{"impact", "--archive", "x", "--topic", "t", "--since", "2h", "--until", "1h", "--bootstrap", "k:9092"}, []string{"only with --emit-compensation"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("amber %v: exit %d, want 2", tc.args, code)
		}
		for _, s := range tc.out {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("amber %v: output lacks %q:\n%s", tc.args, s, stderr.String())
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"impact", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Examples:") {
		t.Errorf("impact --help: exit %d:\n%s", code, stdout.String())
	}
	if code := run([]string{"impact", "--archive", "/nonexistent/amber", "--topic", "t", "--since", "2h", "--until", "1h"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no archive at") {
		t.Errorf("impact on a missing archive: exit %d: %s", code, stderr.String())
	}
}

// TestImpactCommand runs it as users do: `amber proxy` archives to a file
// archive while franz-go groups consume through it (one the whole window,
// one part of it, one up to its first record), then `amber impact`
// reports each exactly, as JSON, as tables, and as a work list written to
// a topic.
func TestImpactCommand(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "orders", "quiet", "work"))
	data, listen := t.TempDir(), freePort(t)
	cmd, _ := startProxyEnv(t, nil, "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "", "--data", data)
	waitListening(t, listen)

	since, until := producePhases(t, listen)
	consumeCommitting(t, listen, "billing", 40)
	consumeCommitting(t, listen, "search", 20)
	consumeCommitting(t, listen, "audit", 10)
	stopProxy(t, cmd)

	window := []string{"--topic", "orders", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano)}
	archiveURL := "file://" + filepath.Join(data, "archive")
	stdout, stderr, err := amberEnv(t, nil, append([]string{"impact", "--archive", archiveURL, "--json"}, window...)...)
	if err != nil {
		t.Fatalf("amber impact --json: %v\n%s", err, stderr)
	}
	var rep impact.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("impact --json: %v\n%s", err, stdout)
	}
	var parts, groups []string
	for _, p := range rep.Partitions {
		parts = append(parts, fmt.Sprintf("%d:[%d,%d)/%d", p.Partition, p.FromOffset, p.ToOffset, p.Records))
	}
	for _, g := range rep.Groups {
		groups = append(groups, fmt.Sprintf("%s:%s:%d/%d", g.Group, g.Status, g.Records, g.WindowRecords))
		for _, p := range g.Partitions {
			if p.Committed != map[string]int64{"billing": 40, "search": 20, "audit": 10}[g.Group] {
				t.Errorf("%s p%d committed %d", g.Group, p.Partition, p.Committed)
			}
		}
	}
	if fmt.Sprint(parts) != "[0:[10,30)/20 1:[10,30)/20]" {
		t.Errorf("window partitions %v", parts)
	}
	if fmt.Sprint(groups) != "[audit:none:0/40 billing:all:40/40 search:partial:20/40]" {
		t.Errorf("groups %v", groups)
	}
	if rep.CommitHistory != impact.HistoryExact || len(rep.Notes) > 0 {
		t.Errorf("commit history %s, notes %q", rep.CommitHistory, rep.Notes)
	}

	// Tables, from the proxy's data directory.
	stdout, stderr, err = amberEnv(t, nil, append([]string{"impact", "--archive", data}, window...)...)
	if err != nil {
		t.Fatalf("amber impact: %v\n%s", err, stderr)
	}
	for _, want := range []string{"orders  0          [10,30)", "billing  yes, all", "search   yes, partly  20 of 40", "audit    no           0 of 40", "2 of 3 groups consumed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	stdout, stderr, err = amberEnv(t, nil, append([]string{"impact", "--archive", data, "--group", "search"}, window...)...)
	if err != nil {
		t.Fatalf("amber impact --group: %v\n%s", err, stderr)
	}
	for _, want := range []string{"Group search: affected, consumed 20 of the window's 40", "orders  0          [10,30)  [10,20)   10       20",
		"orders  1          [10,30)  [10,20)   10       20"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--group table lacks %q:\n%s", want, stdout)
		}
	}

	// A topic nobody consumed through the proxy: the report says what to do.
	stdout, _, err = amberEnv(t, nil, "impact", "--archive", data, "--topic", "quiet", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano))
	flat := strings.Join(strings.Fields(stdout), " ") // notes are wrapped
	if err != nil || !strings.Contains(flat, "route consumers through an Amber proxy") || !strings.Contains(flat, "coarser answer") {
		t.Errorf("no history: %v\n%s", err, stdout)
	}

	// The work list, written to a topic, is the JSON report's.
	_, stderr, err = amberEnv(t, nil, append([]string{"impact", "--archive", archiveURL, "--emit-compensation", "work", "--bootstrap", c.ListenAddrs()[0]}, window...)...)
	if err != nil || !strings.Contains(stderr, "wrote 4 work items to work") {
		t.Fatalf("--emit-compensation: %v\n%s", err, stderr)
	}
	got := readItems(t, c.ListenAddrs(), "work", 4)
	want := rep.WorkList()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("work list\n got %+v\nwant %+v", got, want)
	}
}

// producePhases produces into orders (2 partitions) and quiet (1) ten
// records per partition before the window, twenty in it, ten after, in
// batches of five, and returns the window.
func producePhases(t *testing.T, bootstrap string) (since, until time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	phase := func(n int) {
		for i := 0; i < n; i += 5 {
			var rs []*kgo.Record
			for k := 0; k < 5; k++ {
				rs = append(rs, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("v")}, &kgo.Record{Topic: "orders", Partition: 1, Value: []byte("v")},
					&kgo.Record{Topic: "quiet", Value: []byte("v")})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	phase(10)
	time.Sleep(2 * time.Millisecond)
	since = time.Now()
	phase(20)
	until = time.Now()
	time.Sleep(2 * time.Millisecond)
	phase(10)
	return since, until
}

// consumeCommitting consumes orders in group through bootstrap, committing
// after every poll, until it has committed stop on both partitions.
func consumeCommitting(t *testing.T, bootstrap, group string, stop int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := map[int32]int64{}
	for at[0] < stop || at[1] < stop {
		fs := cl.PollRecords(ctx, 5)
		if ctx.Err() != nil {
			t.Fatalf("group %s committed %v, want %d", group, at, stop)
		}
		var keep []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < stop {
				keep = append(keep, r)
				at[r.Partition] = max(at[r.Partition], r.Offset+1)
			}
		})
		if len(keep) > 0 {
			if err := cl.CommitRecords(ctx, keep...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readItems reads n work items from topic, in work list order.
func readItems(t *testing.T, addrs []string, topic string, n int) []impact.WorkItem {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []impact.WorkItem
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d work items", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var it impact.WorkItem
			if err := json.Unmarshal(r.Value, &it); err != nil || string(r.Key) != it.Group {
				t.Errorf("work item %q (key %q): %v", r.Value, r.Key, err)
			}
			out = append(out, it)
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
