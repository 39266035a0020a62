package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/restore"
)

const restoreExamples = `  # Restore orders as it was at 14:00 into orders-restored, moving the billing group.
  amber restore --archive s3://backups/kafka-prod --bootstrap kafka:9092 \
    --topic orders:orders-restored --until 2026-11-21T14:00:00Z --groups billing

  # Several topics by pattern, renamed; see first what would happen.
  amber restore --archive amber-data/archive --bootstrap test-kafka:9092 \
    --topic 'orders\..*:restored.$0' --dry-run

  # A partition up to an offset, with each record's source offset as a header.
  amber restore --archive /mnt/export --bootstrap kafka:9092 --topic payments:payments-fix \
    --until-offset 18230 --partition 3 --offset-header amber-source-offset

An interrupted restore, run again with the same arguments, continues where it
stopped without writing anything twice.`

func runRestore(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "--archive URL --bootstrap HOST:PORT --topic SRC[:DST] ... [flags]", restoreExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive to restore from: s3://bucket/prefix, file:///dir, or a path (required)")
	var kf kafkaFlags
	kf.register(fs)
	var topics, groups, configs listFlag
	fs.Var(&topics, "topic", "archived topic to restore, SRC or SRC:DST (SRC may be a regular expression, DST may use $1…); repeatable (required)")
	fs.Var(&groups, "groups", "consumer groups to move, SRC[:DST], comma-separated")
	untilStr := fs.String("until", "", "restore only what was acknowledged at or before this time (RFC 3339, a date, or an age like 2h)")
	sinceStr := fs.String("since", "", "restore only what was acknowledged at or after this time")
	by := fs.String("by", "ack-time", "what --until and --since compare: ack-time (when the broker acknowledged) or record-time (record timestamps)")
	untilOffset := fs.Int64("until-offset", -1, "restore only source offsets below N (in --partition, or every partition)")
	partition := fs.Int("partition", -1, "the partition --until-offset applies to")
	includeAborted := fs.Bool("include-aborted", false, "also restore aborted transactions, and those whose outcome the archive does not know")
	offsetHeader := fs.String("offset-header", "", "add each record's source offset as a header of this name (re-encodes every batch)")
	rf := fs.Int("replication-factor", -1, "replication factor for topics the restore creates (-1: the cluster's default)")
	fs.Var(&configs, "config", "topic config k=v for created topics, overriding the archived ones; repeatable")
	force := fs.Bool("force", false, "write into partitions that already hold other data (appending)")
	dryRun := fs.Bool("dry-run", false, "print the plan and write nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of tables")
	reportFile := fs.String("report", "", "write the report (offset maps, counts, groups) as JSON to this file")
	throttle := fs.Float64("throttle", 0, "write at most this many MB/s (0: no limit)")
	parallel := fs.Int("parallel", restore.DefaultParallelism, "partitions restored at once")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	o := restore.Options{UntilOffset: *untilOffset, Partition: int32(*partition), IncludeAborted: *includeAborted,
		OffsetHeader: *offsetHeader, ReplicationFactor: int16(*rf), Force: *force, DryRun: *dryRun,
		ThrottleBytes: *throttle * 1e6, Parallelism: *parallel, Configs: map[string]string{}}
	var errs []error
	if *archiveURL == "" {
		errs = append(errs, usagef("--archive is required"))
	}
	if len(topics) == 0 {
		errs = append(errs, usagef("--topic is required"))
	}
	for _, t := range topics {
		m, err := restore.ParseTopicMapping(t)
		if err != nil {
			errs = append(errs, usageError{err})
		}
		o.Topics = append(o.Topics, m)
	}
	for _, g := range groups {
		m, err := restore.ParseGroupMapping(g)
		if err != nil {
			errs = append(errs, usageError{err})
		}
		o.Groups = append(o.Groups, m)
	}
	for _, c := range configs {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			errs = append(errs, usagef("--config %q: want key=value", c))
		}
		o.Configs[k] = v
	}
	now := time.Now()
	for _, tf := range []struct {
		s   string
		dst *time.Time
	}{{*untilStr, &o.Until}, {*sinceStr, &o.Since}} {
		if tf.s != "" {
			t, err := parseTime(tf.s, now)
			if err != nil {
				errs = append(errs, usageError{err})
			}
			*tf.dst = t
		}
	}
	switch *by {
	case "ack-time":
	case "record-time":
		o.ByRecordTime = true
	default:
		errs = append(errs, usagef("--by %q: want ack-time or record-time", *by))
	}
	if *untilOffset >= 0 && *partition < 0 && len(topics) > 1 {
		errs = append(errs, usagef("--until-offset applies to every partition of every topic; give --partition, or one --topic"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, *archiveURL)
	if err != nil {
		return err
	}
	a, err := archive.OpenArchive(ctx, store, key)
	if err != nil {
		return err
	}
	cl, err := kf.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	o.Archive, o.Client = a, cl

	var total int64
	for _, c := range a.Coverage() {
		for _, m := range o.Topics {
			if _, ok := m.Map(c.Topic); ok {
				total += c.Bytes
				break
			}
		}
	}
	label := "restore"
	if *dryRun {
		label = "plan"
	}
	bar := newProgress(stderr, label, total, true)
	o.Progress = func(b, _ int64) { bar.Add(b) }
	rep, runErr := restore.Run(ctx, o)
	bar.Done()
	if rep != nil {
		if *reportFile != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if err := os.WriteFile(*reportFile, b, 0o644); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			printRestoreReport(stdout, rep)
		}
	}
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			return fmt.Errorf("interrupted: run the same command again to continue where it stopped")
		}
		return fmt.Errorf("%w\nNothing is lost: fix the cause and run the same command again; it continues where it stopped", runErr)
	}
	return nil
}

func printRestoreReport(w io.Writer, rep *restore.Report) {
	verb := "restored"
	if rep.DryRun {
		verb = "would restore (dry run: nothing written)"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SOURCE\tTARGET\tPARTITION\tRECORDS\tBATCHES\tBYTES\tRE-ENCODED\tSKIPPED\tSOURCE OFFSETS\tTARGET OFFSETS\n")
	var records, bytes int64
	for _, t := range rep.Topics {
		for _, p := range t.Partitions {
			records += p.Records
			bytes += p.Bytes
			src, dst := "-", "-"
			if n := len(p.OffsetMap); n > 0 {
				src = fmt.Sprintf("%d-%d", p.OffsetMap[0].SourceStart, p.OffsetMap[n-1].SourceEnd)
				dst = fmt.Sprintf("%d-%d", p.OffsetMap[0].TargetStart, p.TargetEnd)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", t.Source, t.Target, p.Partition, p.Records, p.Batches,
				humanBytes(p.Bytes), p.Reencoded, skippedSummary(p.Skipped), src, dst)
		}
	}
	tw.Flush()
	for _, t := range rep.Topics {
		if t.Created {
			fmt.Fprintf(w, "topic %s: created with %d archived configs\n", t.Target, len(t.Configs))
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		for _, p := range t.Partitions {
			printMissing(w, t.Source, p)
		}
		if t.LogAppendTime {
			fmt.Fprintf(w, "topic %s used LogAppendTime: the archived append times are the restored records' timestamps\n", t.Source)
		}
	}
	if len(rep.Groups) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tTARGET GROUP\tTOPIC\tPARTITION\tSOURCE OFFSET\tTARGET OFFSET")
		for _, g := range rep.Groups {
			if len(g.Offsets) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t(no archived commits for these topics at the cut)\t-\n", g.Source, g.Target)
			}
			sort.Slice(g.Offsets, func(i, j int) bool { return g.Offsets[i].Partition < g.Offsets[j].Partition })
			for _, o := range g.Offsets {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", g.Source, g.Target, o.TargetTopic, o.Partition, o.Source, o.Target)
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n%s %d records (%s) in %d topics\n", verb, records, humanBytes(bytes), len(rep.Topics))
}

func skippedSummary(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// printMissing says which source offsets a partition's restore could not
// write because the archive does not hold them, and what to do.
func printMissing(w io.Writer, topic string, p restore.PartitionReport) {
	var holes, holeOffsets int64
	for _, m := range p.Missing {
		if m.Reason == "hole" {
			holes++
			holeOffsets += m.End - m.Start
			continue
		}
		fmt.Fprintf(w, "note: %s/%d offsets [%d,%d) are not in the archive and cannot be restored: %s on the cluster before a backfill fetched them\n",
			topic, p.Partition, m.Start, m.End, m.Reason)
	}
	if holes > 0 {
		fmt.Fprintf(w, "note: %s/%d has %d holes (%d offsets) the archive does not hold: records produced around Amber or transaction markers; run amber backfill while the cluster still has them, then restore into a new or emptied topic\n",
			topic, p.Partition, holes, holeOffsets)
	}
}
