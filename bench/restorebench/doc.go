// Package restorebench measures how fast restore.Run replays an archive
// into a Kafka cluster, against a franz-go producer writing the same
// records fresh into the same cluster in the same run.
//
// A restore replays finished batches: it never encodes or compresses a
// record, it only rewrites each batch's producer fields (and so its CRC).
// A producer builds and compresses every batch. So a restore must be at
// least as fast as producing the same data; the ratio restore/produce is
// held to TargetRatio.
//
// Method, and why:
//
//   - Each shape (batch size, codec) gets a workload: Records of
//     RecordBytes values (text, so that codecs compress it about as they
//     do real payloads), spread over Partitions, batched and compressed
//     the way a franz-go producer with that batch size and codec does, and
//     archived with archive.Writer into an in-memory store. The archive is
//     built once, outside every measurement; the restore reads it through
//     archive.OpenArchive as it would read S3, minus the network.
//   - Four modes write the workload into a fresh, pre-created topic:
//     ModeRestore (restore.Run) and ModeProduce (a franz-go producer given
//     the same records, same partitions, same batch size and codec) into
//     an in-memory kfake cluster; ModeRestoreBlackhole and
//     ModeProduceBlackhole into a kfake cluster with BlackholeProduce,
//     which acknowledges and discards, so that the broker's storing is out
//     of the measurement. Each run is timed from the call to the last
//     acknowledgement, and checked afterwards: the topic's end offsets
//     must add up to the records written.
//   - Modes alternate inside each round and the order rotates every
//     round, so drift of a shared machine lands on every mode; results are
//     medians over the rounds. On a 2-core machine runs vary by up to 2×,
//     so only ratios within one run mean much.
//   - Every run reads the process's CPU time (getrusage: user and system,
//     all threads) over its window. kfake runs in the same process, so
//     this is client plus broker; CPU seconds per GB and MB/s per core say
//     what a mode costs where MB/s only says how two cores were shared.
//
// Goroutines carry the pprof label bench=MODE (restore, produce, ...) or
// bench=kfake, so a profile of a whole run can be cut down to one side:
//
//	go run ./bench/cmd/amber-restore-bench -cpuprofile cpu.prof
//	go tool pprof -top -tagfocus=bench=restore cpu.prof
//
// Usage:
//
//	rep, err := restorebench.Run(ctx, restorebench.Options{Rounds: 5})
//	if err != nil { ... }
//	rep.WriteTable(os.Stdout)
//
// The runnable front end is bench/cmd/amber-restore-bench;
// docs/BENCHMARKS-RESTORE.md has the command and a table from a real run.
package restorebench
