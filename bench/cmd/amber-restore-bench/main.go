// Command amber-restore-bench measures restore throughput: restore.Run
// replaying an in-memory archive into a kfake cluster, against a franz-go
// producer writing the same records fresh into the same cluster, and both
// again into a kfake cluster that discards what it is sent
// (BlackholeProduce), alternating, in one process. It prints a table of
// medians with MB/s, CPU seconds per GB and MB/s per core, and the
// restore/produce ratio (or JSON with -json); with -check it exits 1 if a
// restore is slower than producing.
//
// Examples:
//
//	go run ./bench/cmd/amber-restore-bench
//	go run ./bench/cmd/amber-restore-bench -rounds 3 -shapes 16k/none,1m/lz4 -modes restore,produce
//	go run ./bench/cmd/amber-restore-bench -cpuprofile cpu.prof &&
//	  go tool pprof -top -tagfocus=bench=restore cpu.prof
//
// Progress, one line per run, goes to stderr; -q silences it.
package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/amber-kafka/amber/bench/restorebench"
	"github.com/amber-kafka/amber/bench/runner"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o        restorebench.Options
		shapes   string
		modes    string
		shapeMiB int64
	)
	var defShapes []string
	for _, s := range restorebench.DefaultShapes {
		defShapes = append(defShapes, s.String())
	}
	flag.IntVar(&o.Rounds, "rounds", restorebench.DefaultRounds, "runs of each mode per shape")
	flag.IntVar(&o.Brokers, "brokers", restorebench.DefaultBrokers, "kfake brokers per cluster")
	flag.IntVar(&o.Partitions, "partitions", restorebench.DefaultPartitions, "partitions the records spread over")
	flag.IntVar(&o.RecordBytes, "record-bytes", restorebench.DefaultRecordBytes, "bytes per record value")
	flag.Int64Var(&shapeMiB, "mib", restorebench.DefaultShapeBytes>>20, "MiB of values per shape")
	flag.IntVar(&o.Parallelism, "parallelism", 0, "the restore's parallelism (0: its default)")
	flag.StringVar(&shapes, "shapes", strings.Join(defShapes, ","), "comma-separated batch shapes SIZE/CODEC (16k/none, 1m/lz4, ...)")
	flag.StringVar(&modes, "modes", strings.Join(restorebench.Modes, ","), "comma-separated modes to run")
	c := &runner.Command{
		Name:          "amber-restore-bench",
		Summary:       "Compares restoring an archive with producing the same records, into kfake.",
		ProfileLabels: "goroutines carry the pprof label bench=MODE or bench=kfake",
		ProgressPer:   "run",
		Check:         "a restore is slower than producing the same records",
		Missed:        "a restore was slower than producing the same records",
	}
	if !c.Parse(flag.CommandLine, os.Args[1:]) {
		return 2
	}
	var err error
	if o.Shapes, err = runner.ParseShapes(shapes); err != nil {
		return c.BadUsage(err)
	}
	o.Modes = strings.Split(modes, ",")
	o.ShapeBytes = shapeMiB << 20
	o.Progress = c.Progress()
	if o.Logger, err = runner.Logger(); err != nil {
		return c.Fail(err)
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return c.BadUsage(err)
	}
	return c.Run(func(ctx context.Context) (runner.Report, error) { return restorebench.Run(ctx, o) })
}
