// Package completeness measures what `amber backfill` and `amber verify`
// cost: backfill throughput as a ratio to a franz-go consumer reading the
// same range of the same cluster in the same process, and the throughput
// of both verifications in MB/s.
//
// Method, and why:
//
//   - One in-process kfake cluster per shape holds a log produced once by
//     franz-go (o.ShapeBytes of 1 KiB mostly random values, batched and
//     compressed as the shape says, round-robin over the partitions).
//     Both readers read the whole log, from the log start to the high
//     watermark: backfill into an empty archive, so every offset is a
//     hole; the consumer (default options, no group) visiting every
//     record.
//   - Consume and backfill alternate, and swap order every round, so drift
//     of the machine lands on both. Each run starts after a garbage
//     collection. The report shows medians over the rounds; on a shared
//     2-core machine single runs vary, so only the ratio within one run
//     means much.
//   - Backfill is timed until the archive holds everything: the writer's
//     last segment and index are uploaded (to a fresh directory, fsynced
//     as the file store does, or to memory with Memory). Both throughputs
//     are of the log's bytes as batches.
//   - Verify reads every object of the archive the backfill wrote and
//     checks everything (archive.VerifyIntegrity); MB/s of object bytes.
//     Verify --against fetches the log again and compares it record by
//     record with the archive (Archive.CompareWithCluster), decoding (and
//     decompressing) both sides; MB/s of the log's bytes. Both must find
//     the archive equal to the cluster, or the run fails.
//
// Usage:
//
//	rep, err := completeness.Measure(ctx, completeness.Options{Progress: os.Stderr})
//	rep.WriteTable(os.Stdout)
//
// The runnable front end is bench/cmd/amber-completeness-bench;
// docs/BENCHMARKS-COMPLETENESS.md has the command and a real run.
package completeness
