package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/amber-kafka/amber/archive"
)

// registerArchiveMetrics exposes the journal's and tee's counters. They are
// read from the components' Stats on each scrape, so the hot path pays
// nothing for them.
func registerArchiveMetrics(reg prometheus.Registerer, j *archive.Journal, tee *archive.Tee, u *archive.Uploader) {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	js := func(f func(archive.JournalStats) int64) func() float64 {
		return func() float64 { return float64(f(j.Stats())) }
	}
	ts := func(f func(archive.TeeStats) int64) func() float64 {
		return func() float64 { return float64(f(tee.Stats())) }
	}
	us := func(f func(archive.UploaderStats) int64) func() float64 {
		return func() float64 { return float64(f(u.Stats())) }
	}
	reg.MustRegister(
		gauge("amber_upload_backlog_bytes", "Journaled batch bytes not yet uploaded to the archive.", func() float64 { return float64(j.BacklogBytes()) }),
		counter("amber_upload_segments_total", "Segments uploaded, each with its index.", us(func(s archive.UploaderStats) int64 { return s.Segments })),
		counter("amber_upload_objects_total", "Objects written to the archive store.", us(func(s archive.UploaderStats) int64 { return s.Objects })),
		counter("amber_upload_bytes_total", "Bytes written to the archive store.", us(func(s archive.UploaderStats) int64 { return s.Bytes })),
		counter("amber_upload_failures_total", "Failed upload attempts (retried with backoff).", us(func(s archive.UploaderStats) int64 { return s.Failures })),
		gauge("amber_upload_consecutive_failures", "Upload failures since the last success: alert when it stays above 0.", us(func(s archive.UploaderStats) int64 { return s.ConsecFailure })),
		gauge("amber_upload_last_success_timestamp_seconds", "When the last upload succeeded.", func() float64 {
			if t := u.Stats().LastUpload; !t.IsZero() {
				return float64(t.UnixNano()) / 1e9
			}
			return 0
		}),
		counter("amber_journal_batches_total", "Record batches committed to the journal.", js(func(s archive.JournalStats) int64 { return s.Batches })),
		counter("amber_journal_batch_bytes_total", "Bytes of record batches committed to the journal.", js(func(s archive.JournalStats) int64 { return s.BatchBytes })),
		counter("amber_journal_duplicates_total", "Batches already journaled (idempotent retries), stored once.", js(func(s archive.JournalStats) int64 { return s.Duplicates })),
		counter("amber_journal_events_total", "Commits, transaction outcomes and admin changes journaled.", js(func(s archive.JournalStats) int64 { return s.Events })),
		counter("amber_journal_commits_total", "Group commits (one fsync each).", js(func(s archive.JournalStats) int64 { return s.Commits })),
		counter("amber_journal_commit_errors_total", "Group commits that failed; their entries are holes.", js(func(s archive.JournalStats) int64 { return s.CommitErrors })),
		counter("amber_journal_refused_total", "Appends refused: backlog full, journal failed or closed.", js(func(s archive.JournalStats) int64 { return s.Refused })),
		counter("amber_journal_commit_seconds_total", "Time spent in group commits.", func() float64 { return float64(j.Stats().CommitNanos) / 1e9 }),
		gauge("amber_journal_pending_bytes", "Bytes waiting for the next group commit.", js(func(s archive.JournalStats) int64 { return s.PendingBytes })),
		gauge("amber_journal_healthy", "1 while the journal works, 0 when failed or stalled.", func() float64 {
			if j.Health() != nil {
				return 0
			}
			return 1
		}),
		counter("amber_tee_batches_total", "Produced batches the broker accepted, handed to the journal.", ts(func(s archive.TeeStats) int64 { return s.Batches })),
		counter("amber_tee_acks0_batches_total", "Batches produced with acks=0: no offsets, not journaled.", ts(func(s archive.TeeStats) int64 { return s.AcksZeroBatches })),
		counter("amber_tee_failed_batches_total", "Batches in partitions the broker refused (not journaled).", ts(func(s archive.TeeStats) int64 { return s.FailedBatches })),
		counter("amber_tee_dropped_batches_total", "Accepted batches the journal refused or failed: holes until backfilled.", ts(func(s archive.TeeStats) int64 { return s.Dropped })),
		counter("amber_tee_sync_timeouts_total", "Sync-mode responses sent before the journal confirmed.", ts(func(s archive.TeeStats) int64 { return s.SyncTimeouts })),
		counter("amber_tee_unknown_topic_ids_total", "Produce v13 partitions whose topic id was never seen in Metadata.", ts(func(s archive.TeeStats) int64 { return s.UnknownTopicIDs })),
		counter("amber_tee_events_total", "Events handed to the journal.", ts(func(s archive.TeeStats) int64 { return s.Events })),
	)
}
