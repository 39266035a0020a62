// Package bench measures what the Amber proxy costs a Kafka client.
//
// Every scenario runs the same franz-go workload twice per round: once with
// the client dialing a kfake cluster directly, once through an Amber proxy in
// front of that same cluster. Both runs share the process, the cluster and
// the machine, and results are reported as proxied/direct ratios (throughput)
// or proxied-direct differences (latency, CPU per GB), never as absolute
// numbers to be compared across machines or runs.
//
// Method, and why:
//
//   - The broker is kept off the critical path. Produce scenarios run against
//     kfake with BlackholeProduce (records are acknowledged and discarded);
//     the consume scenario runs against SyntheticFetch (every fetch is
//     answered with copies of one canned batch). Otherwise kfake's single
//     request goroutine, not the proxy, is what gets measured.
//   - Direct and proxied runs alternate, and the order flips every round
//     (D P, P D, D P, ...), so slow drift of the machine (a noisy neighbour,
//     GC debt) lands on both modes equally. Each scenario reports the median
//     over its rounds. On a shared 2-core machine single runs vary by up to
//     2×, so only ratios within one run mean anything.
//   - Each run gets a fresh client and a garbage collection before it
//     starts, then a warm-up (connections, metadata, the proxy's per-broker
//     listeners, buffer growth) that is not measured, then a fixed window.
//   - Throughput runs also read the process's CPU time (user and system,
//     all threads) over their window. On a saturated machine the rate only
//     says how the CPU was shared out; CPU seconds per GB moved says what the
//     proxy costs, and holds on a machine with cores to spare too.
//
// Goroutines carry pprof labels: component (client, proxy, kfake),
// scenario, for clients mode, and bench joining them ("consume/proxy",
// "produce/client/direct"), so a CPU profile of a whole run can be cut down
// to the proxy's share of one scenario:
//
//	go tool pprof -top -tagfocus=bench=consume/proxy cpu.prof
//
// Usage:
//
//	rep, err := bench.Run(ctx, bench.Options{Rounds: 5, Progress: os.Stderr})
//	if err != nil { ... }
//	rep.WriteTable(os.Stdout)
//
// The runnable front end is bench/cmd/amber-bench; docs/BENCHMARKS.md has
// the command and a table from a real run.
package bench
