// Package archivebench measures what archiving costs, each part against
// the simplest thing that does the same job:
//
//   - the journal (archive.Journal: Pebble, one fsync per group commit)
//     against rawLog, an append-only file written with one write(2) and
//     one fsync(2) per group, same bytes, same grouping, same directory;
//   - the tee on the proxy's produce path (archive.Tee in async and sync
//     durability) against the same proxy without a tee, at maximum
//     throughput and at a fixed rate;
//   - the uploader (archive.Uploader.Flush through archive/s3 to a real
//     MinIO) against minio-go PutObject of the very objects it wrote.
//
// Method, and why:
//
//   - Variants alternate within rounds and their order rotates from round
//     to round, so slow drift of a shared 2-core machine lands on all of
//     them. Results are medians; ratios are medians of per-round ratios,
//     each comparing runs made back to back. Nothing is asserted about
//     wall-clock time: runs vary by up to 2× on these machines.
//   - Produce runs go to kfake with BlackholeProduce: records are
//     acknowledged with real, advancing base offsets and discarded, so
//     the tee journals what it would with a real broker while the broker
//     stays out of the measurement.
//   - Every produce run gets a new proxy and a journal in the steady state
//     of a proxy whose uploader keeps up: no batches, and four spare batch
//     log files to reuse (seasonJournal); no uploader runs during produce
//     runs, so their CPU is the tee's and the journal's alone.
//   - Throughput runs read the process's CPU time over their window; on
//     a saturated machine CPU seconds per GB says what a component costs
//     better than the rate does. The upload scenario also reads MinIO's
//     CPU from /proc.
//   - Record values are cut in turn from a 64 MiB pool, so neither Pebble
//     nor the archive's zstd finds repeats a real workload would not have.
//     The upload scenario also produces JSON log lines (compressible).
//
// Goroutines carry the pprof label bench=SCENARIO/WHAT (journal/raw,
// paced/proxy/tee-sync, upload/uploader/compressible, ...); Pebble labels
// its own background work (pebble=flush, compact, wal-sync):
//
//	go tool pprof -tags cpu.prof
//	go tool pprof -top -cum -tagfocus=bench=paced/journal/tee-sync cpu.prof
//
// Usage:
//
//	rep, err := archivebench.Run(ctx, archivebench.Options{Progress: os.Stderr})
//	if err != nil { ... }
//	rep.WriteTable(os.Stdout)
//
// The runnable front end is bench/cmd/amber-archive-bench;
// docs/BENCHMARKS-ARCHIVE.md has the command and a table from a real run.
package archivebench
