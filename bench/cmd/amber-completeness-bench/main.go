// Command amber-completeness-bench measures amber backfill and amber
// verify against an in-process kfake cluster: backfill throughput as a
// ratio to a franz-go consumer reading the same range (target ≥ 0.9), and
// verify throughput in MB/s, with and without --against. It prints a table
// of medians (or JSON with -json) and exits 1 if -check is given and the
// target is missed.
//
// Examples:
//
//	go run ./bench/cmd/amber-completeness-bench
//	go run ./bench/cmd/amber-completeness-bench -rounds 5 -shape-bytes 512m -shapes 1m/none
//	go run ./bench/cmd/amber-completeness-bench -memory -json > completeness.json
//
// Progress, one line per round, goes to stderr; -q silences it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/amber-kafka/amber/bench/completeness"
	"github.com/amber-kafka/amber/bench/runner"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with
// -check, 2 bad usage.
func run() int {
	var (
		o          completeness.Options
		shapes     string
		shapeBytes string
	)
	flag.IntVar(&o.Rounds, "rounds", completeness.DefaultRounds, "rounds per shape")
	flag.IntVar(&o.Brokers, "brokers", completeness.DefaultBrokers, "kfake brokers")
	flag.IntVar(&o.Partitions, "partitions", completeness.DefaultPartitions, "partitions of the topic")
	flag.IntVar(&o.RecordBytes, "record-bytes", completeness.DefaultRecordBytes, "bytes per record value")
	flag.StringVar(&shapeBytes, "shape-bytes", "256m", "bytes of values per shape (k, m, g suffixes)")
	flag.StringVar(&shapes, "shapes", "1m/none,16k/lz4", "comma-separated SIZE/CODEC: producer batch size and codec")
	flag.StringVar(&o.Dir, "dir", "", "where file archives are written (default: the system temp directory)")
	flag.BoolVar(&o.Memory, "memory", false, "write archives to memory instead of a directory")
	c := &runner.Command{
		Name:        "amber-completeness-bench",
		Summary:     "Measures amber backfill against a franz-go consumer, and amber verify.",
		ProgressPer: "round",
		Check:       "backfill/consume is below the target",
	}
	if !c.Parse(flag.CommandLine, os.Args[1:]) {
		return 2
	}
	var err error
	if o.ShapeBytes, err = parseBytes(shapeBytes); err != nil {
		return c.BadUsage(fmt.Errorf("-shape-bytes: %w", err))
	}
	if o.Shapes, err = runner.ParseShapes(shapes); err != nil {
		return c.BadUsage(err)
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return c.BadUsage(err)
	}
	o.Progress = c.Progress()
	return c.Run(func(ctx context.Context) (runner.Report, error) { return completeness.Measure(ctx, o) })
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive size such as 256m", s)
	}
	return n * mult, nil
}
