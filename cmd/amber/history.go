package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
)

const historyExamples = `  amber history --archive amber-data --topic orders               # who changed topic orders, and when
  amber history --archive s3://backups/kafka-prod --since 24h --kind admin,loss
  amber history --archive amber-data --group billing --kind commits --json | jq '.[].summary'`

// historyKinds are the names --kind takes for groups of event kinds.
var historyKinds = map[string][]string{
	"admin": {archive.KindCreateTopics, archive.KindDeleteTopics, archive.KindCreatePartitions, archive.KindAlterConfigs,
		archive.KindIncrementalAlterConfigs, archive.KindDeleteRecords, archive.KindDeleteGroups},
	"commits":   {archive.KindOffsetCommit, archive.KindTxnOffsetCommit},
	"txn":       {archive.KindEndTxn},
	"loss":      {archive.KindKnownLoss},
	"snapshots": {archive.KindConfigSnapshot, archive.KindGroupOffsetsSnapshot},
}

// historyEvent is one line of `amber history`, and one object of its JSON.
type historyEvent struct {
	Time     time.Time       `json:"time"`
	Kind     string          `json:"kind"`
	ClientID string          `json:"client_id"`
	Writer   string          `json:"writer"` // the proxy (writer id) or backfill that recorded it; "journal" if not uploaded yet
	Seq      uint64          `json:"seq"`
	Summary  string          `json:"summary"`
	Body     json.RawMessage `json:"body"`
}

// runHistory prints the events an archive recorded: admin changes with the
// client id that made them, commits, transaction outcomes and what a
// backfill found lost — the trail that answers "who set retention to one
// day on orders, and when".
func runHistory(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("history", "--archive URL [--kind K[,K...]] [--topic T] [--group G] [--since TIME] [--until TIME] [--json]", historyExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (its archive plus what its journal has not uploaded yet) (required)")
	var kinds listFlag
	fs.Var(&kinds, "kind", "what to show, comma-separated: admin (topic and config changes, deleted records and groups), commits (consumer-group offsets), txn (transaction outcomes), loss (what a backfill found gone), snapshots, all, or an event kind such as incremental_alter_configs (default admin,loss)")
	var topics listFlag
	fs.Var(&topics, "topic", "only events about these topics, comma-separated or repeated")
	var groups listFlag
	fs.Var(&groups, "group", "only events about these consumer groups (commits, deleted groups, group snapshots)")
	sinceStr := fs.String("since", "", "only events at or after: RFC 3339, a date, 2006-01-02T15:04, or an age like 24h")
	untilStr := fs.String("until", "", "only events at or before")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per event, oldest first")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var errs []error
	if *archiveURL == "" {
		errs = append(errs, usagef("--archive is required"))
	}
	if len(kinds) == 0 {
		kinds = listFlag{"admin", "loss"}
	}
	want := map[string]bool{}
	known := map[string]bool{}
	for _, ks := range historyKinds {
		for _, k := range ks {
			known[k] = true
		}
	}
	for _, k := range kinds {
		switch {
		case k == "all":
			for kk := range known {
				want[kk] = true
			}
		case historyKinds[k] != nil:
			for _, kk := range historyKinds[k] {
				want[kk] = true
			}
		case known[k]:
			want[k] = true
		default:
			errs = append(errs, usagef("--kind %q: want admin, commits, txn, loss, snapshots, all or an event kind", k))
		}
	}
	var since, until time.Time
	now := time.Now()
	for _, tf := range []struct {
		name, s string
		dst     *time.Time
	}{{"--since", *sinceStr, &since}, {"--until", *untilStr, &until}} {
		if tf.s == "" {
			continue
		}
		t, err := parseTime(tf.s, now)
		if err != nil {
			errs = append(errs, usagef("%s: %v", tf.name, err))
		}
		*tf.dst = t
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a, j, err := openArchiveAndJournal(ctx, *archiveURL, key, "the events it has not uploaded yet (up to --flush-interval) are left out", stderr)
	if err != nil {
		return err
	}
	defer j.Close()

	topicSet, groupSet := setOf(topics), setOf(groups)
	var out []historyEvent
	keep := func(writer string, ev *archive.Event) error {
		if !want[ev.Kind] || (!since.IsZero() && ev.Time.Before(since)) || (!until.IsZero() && ev.Time.After(until)) {
			return nil
		}
		summary, topic, group := describeEvent(ev)
		if len(topicSet) > 0 && !topicSet[topic] || len(groupSet) > 0 && !groupSet[group] {
			return nil
		}
		out = append(out, historyEvent{Time: ev.Time.UTC(), Kind: ev.Kind, ClientID: ev.ClientID, Writer: writer, Seq: ev.Seq,
			Summary: summary, Body: append(json.RawMessage(nil), ev.Body...)})
		return nil
	}
	if err := a.Events(ctx, keep); err != nil {
		return fmt.Errorf("read the archive's events: %w", err)
	}
	if j != nil {
		if err := j.Events(func(ev *archive.Event) error { return keep("journal", ev) }); err != nil {
			return fmt.Errorf("read the journal's events: %w", err)
		}
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Time.Before(out[k].Time) })

	if *asJSON {
		if out == nil {
			out = []historyEvent{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(out) == 0 {
		fmt.Fprintf(stdout, "no %s events in %s match (try --kind all, or a wider --since)\n", strings.Join(kinds, ","), *archiveURL)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tCLIENT\tWHAT")
	for _, e := range out {
		client := e.ClientID
		if client == "" {
			client = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fmtAck(e.Time), e.Kind, client, e.Summary)
	}
	return tw.Flush()
}

func setOf(l listFlag) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

// describeEvent says in a line what an event records, and which topic
// and group it is about ("" if none).
func describeEvent(ev *archive.Event) (summary, topic, group string) {
	bad := func(err error) (string, string, string) {
		return fmt.Sprintf("(unreadable %s event: %v)", ev.Kind, err), "", ""
	}
	switch ev.Kind {
	case archive.KindCreateTopics:
		var b archive.TopicCreatedEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		s := fmt.Sprintf("created topic %s: %d partitions, replication factor %d", b.Topic, b.Partitions, b.ReplicationFactor)
		if len(b.Configs) > 0 {
			s += ", " + configList(b.Configs)
		}
		return s, b.Topic, ""
	case archive.KindDeleteTopics:
		var b archive.TopicDeletedEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		name := b.Topic
		if name == "" {
			name = "id " + b.TopicID
		}
		if b.Observed {
			return "topic " + name + " was deleted and created again around Amber, by now (its metadata names a new topic id)", b.Topic, ""
		}
		return "deleted topic " + name, b.Topic, ""
	case archive.KindCreatePartitions:
		var b archive.PartitionsCreatedEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return fmt.Sprintf("topic %s grown to %d partitions", b.Topic, b.Count), b.Topic, ""
	case archive.KindAlterConfigs, archive.KindIncrementalAlterConfigs:
		var b archive.ConfigsAlteredEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		s := fmt.Sprintf("%s %s: %s", b.ResourceType, b.ResourceName, configList(b.Configs))
		if !b.Incremental {
			s += " (replacing every other config)"
		}
		if b.ResourceType == "topic" {
			topic = b.ResourceName
		}
		return s, topic, ""
	case archive.KindDeleteRecords:
		var b archive.RecordsDeletedEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s/%d: records before offset %d deleted (log start now %d)", b.Topic, b.Partition, b.Offset, b.LowWatermark), b.Topic, ""
	case archive.KindDeleteGroups:
		var b archive.GroupDeletedEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return "deleted group " + b.Group, "", b.Group
	case archive.KindOffsetCommit, archive.KindTxnOffsetCommit:
		var b archive.OffsetCommitEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		s := fmt.Sprintf("group %s committed %s/%d at %d", b.Group, b.Topic, b.Partition, b.Offset)
		if b.TransactionalID != "" {
			s += " in transaction " + b.TransactionalID + " (counts only if it commits)"
		}
		return s, b.Topic, b.Group
	case archive.KindEndTxn:
		var b archive.EndTxnEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		outcome := "aborted"
		if b.Commit {
			outcome = "committed"
		}
		return fmt.Sprintf("transaction %s (producer %d, epoch %d) %s", b.TransactionalID, b.ProducerID, b.ProducerEpoch, outcome), "", ""
	case archive.KindKnownLoss:
		var b archive.KnownLossEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return fmt.Sprintf("%s/%d offsets [%d,%d) lost before they were archived: %s (cluster log start %d, high watermark %d)",
			b.Topic, b.Partition, b.Start, b.End, b.Reason, b.LogStartOffset, b.HighWatermark), b.Topic, ""
	case archive.KindConfigSnapshot:
		var b archive.ConfigSnapshotEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return fmt.Sprintf("snapshot of topic %s: %d partitions, %d configs", b.Topic, b.Partitions, len(b.Configs)), b.Topic, ""
	case archive.KindGroupOffsetsSnapshot:
		var b archive.GroupOffsetsSnapshotEvent
		if err := json.Unmarshal(ev.Body, &b); err != nil {
			return bad(err)
		}
		return fmt.Sprintf("snapshot of group %s: %d committed positions", b.Group, len(b.Offsets)), "", b.Group
	}
	return string(ev.Body), "", ""
}

// configList is "retention.ms=86400000, cleanup.policy deleted".
func configList(cs []archive.ConfigEntry) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		switch {
		case c.Op == "delete":
			parts = append(parts, c.Name+" deleted (back to default)")
		case c.Value == nil:
			parts = append(parts, c.Name+"=(null)")
		case c.Op == "append" || c.Op == "subtract":
			parts = append(parts, fmt.Sprintf("%s %s %s", c.Name, c.Op, *c.Value))
		default:
			parts = append(parts, c.Name+"="+*c.Value)
		}
	}
	return strings.Join(parts, ", ")
}
