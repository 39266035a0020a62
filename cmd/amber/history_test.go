package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/internal/testkit"
)

// TestHistoryCommand: an operator script changes topics through `amber
// proxy` while an application commits offsets; `amber history` then says
// who set retention to one day on orders, and when, and lists the rest by
// kind, topic and group, as a table and as JSON, from the archive and from
// the proxy's data directory.
func TestHistoryCommand(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "other"))
	data, listen := t.TempDir(), freePort(t)
	cmd, _ := startProxyEnv(t, nil, "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "", "--data", data)
	waitListening(t, listen)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ops, err := kgo.NewClient(kgo.SeedBrokers(listen), kgo.ClientID("ops-script"))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	adm := kadm.NewClient(ops)
	start := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = adm.CreateTopic(ctx, 2, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "orders")
	must(err)
	_, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, "orders")
	must(err)
	_, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1000")}}, "other")
	must(err)
	_, err = adm.CreatePartitions(ctx, 1, "orders")
	must(err)

	app, err := kgo.NewClient(kgo.SeedBrokers(listen), kgo.ClientID("billing-app"))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 7, LeaderEpoch: -1})
	_, err = kadm.NewClient(app).CommitOffsets(ctx, "billing", offs)
	must(err)
	offs = kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1})
	_, err = kadm.NewClient(app).CommitOffsets(ctx, "search", offs)
	must(err)
	_, err = adm.DeleteGroups(ctx, "search")
	must(err)
	_, err = adm.DeleteTopics(ctx, "other")
	must(err)
	stopProxy(t, cmd)
	end := time.Now()

	archiveURL := "file://" + filepath.Join(data, "archive")
	out, stderr, err := amberEnv(t, nil, "history", "--archive", archiveURL, "--topic", "orders")
	if err != nil {
		t.Fatalf("amber history: %v\n%s", err, stderr)
	}
	t.Logf("amber history --topic orders:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, want := range []string{
		"create_topics              ops-script  created topic orders: 2 partitions, replication factor 1, cleanup.policy=delete",
		"incremental_alter_configs  ops-script  topic orders: retention.ms=86400000",
		"create_partitions          ops-script  topic orders grown to 3 partitions",
	} {
		if i+1 >= len(lines) || !strings.HasSuffix(lines[i+1], want) {
			t.Errorf("line %d: want one ending in %q", i+1, want)
		}
	}
	if len(lines) != 4 || strings.Contains(out, "other") || strings.Contains(out, "billing") {
		t.Errorf("--topic orders shows %d lines, or another topic or a commit (admin and losses only by default)", len(lines)-1)
	}

	// Everything, as JSON, from the proxy's data directory.
	out, stderr, err = amberEnv(t, nil, "history", "--archive", data, "--kind", "all", "--json")
	if err != nil {
		t.Fatalf("amber history --json: %v\n%s", err, stderr)
	}
	var evs []historyEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var kinds []string
	for i, e := range evs {
		if e.Kind == "config_snapshot" { // the proxy's background backfill records the seeded topic at start
			continue
		}
		kinds = append(kinds, e.Kind)
		if e.Time.Before(start.Add(-time.Second)) || e.Time.After(end) || (i > 0 && e.Time.Before(evs[i-1].Time)) {
			t.Errorf("event %d at %s: outside [%s, %s] or out of order", i, e.Time, start, end)
		}
		if e.Writer == "" || e.Writer == "journal" || len(e.Body) == 0 || e.Summary == "" {
			t.Errorf("event %d: writer %q (want the proxy's, uploaded at shutdown), body %s, summary %q", i, e.Writer, e.Body, e.Summary)
		}
	}
	if got := strings.Join(kinds, " "); got != "create_topics incremental_alter_configs incremental_alter_configs create_partitions offset_commit offset_commit delete_groups delete_topics" {
		t.Errorf("kinds in order: %s", got)
	}

	out, _, err = amberEnv(t, nil, "history", "--archive", data, "--kind", "commits", "--group", "billing")
	if err != nil || !strings.Contains(out, "billing-app  group billing committed orders/0 at 7") || strings.Contains(out, "search") {
		t.Errorf("--kind commits --group billing: %v\n%s", err, out)
	}
	out, _, err = amberEnv(t, nil, "history", "--archive", data, "--since", end.Add(time.Hour).Format(time.RFC3339))
	if err != nil || !strings.Contains(out, "no admin,loss events") {
		t.Errorf("nothing in the window: %v\n%s", err, out)
	}
	_, stderr, err = amberEnv(t, nil, "history", "--archive", data, "--kind", "retention", "--since", "yesterday")
	if err == nil || !strings.Contains(stderr, `--kind "retention"`) || !strings.Contains(stderr, `time "yesterday"`) {
		t.Errorf("bad flags: %v\n%s", err, stderr)
	}
}
