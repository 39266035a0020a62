package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/amber-kafka/amber/archive"
)

const pruneExamples = `  amber prune --archive s3://backups/kafka-prod --before 2026-01-01T00:00:00Z --dry-run
  amber prune --archive amber-data/archive --before 720h          # older than 30 days
  amber prune --archive s3://backups/kafka-prod --before 2026-06-01 --topic clickstream`

// runPrune deletes whole uploads acknowledged before a time: the only way
// anything leaves an archive.
func runPrune(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("prune", "--archive URL --before TIME [--topic T,...] [--dry-run]", pruneExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive (required)")
	beforeStr := fs.String("before", "", "delete uploads whose data was all acknowledged before this: RFC 3339, a date (2026-01-02), or an age (720h) (required)")
	var topics listFlag
	fs.Var(&topics, "topic", "only uploads holding nothing but these topics (uploads with commit and admin history go only with a full prune)")
	dryRun := fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *archiveURL == "" || *beforeStr == "" {
		return usagef("--archive and --before are required")
	}
	before, err := parseTime(*beforeStr, time.Now())
	if err != nil {
		return usageError{err}
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := openStore(ctx, *archiveURL)
	if err != nil {
		return err
	}
	a, err := archive.OpenArchive(ctx, store, key)
	if err != nil {
		return err
	}
	plan, err := a.PlanPrune(ctx, before, topics)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "prune %s before %s: %d uploads and %d orphaned segments, %s; %d uploads kept\n",
		store, before.Format(time.RFC3339), len(plan.Uploads), len(plan.Orphans), humanBytes(plan.Bytes), plan.Kept)
	if *dryRun {
		for _, ix := range plan.Uploads {
			fmt.Fprintf(stdout, "  would delete %s and %s\n", ix.Key, ix.Segment)
		}
		for _, o := range plan.Orphans {
			fmt.Fprintf(stdout, "  would delete %s (no index)\n", o.Key)
		}
		return nil
	}
	bar := newProgress(stderr, "prune", int64(len(plan.Uploads)+len(plan.Orphans)), false)
	err = a.Prune(ctx, plan, func(done, _ int) { bar.Set(int64(done)) })
	bar.Done()
	return err
}

// parseTime reads RFC 3339, a bare date, or a duration meaning "this long
// before now".
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or an age (720h)", s)
}
