// Command amber-bench measures what the Amber proxy costs a Kafka client:
// produce and consume throughput and produce latency, each run directly
// against an in-process kfake cluster and through an Amber proxy in front of
// it, alternating, in one process. It prints a table of medians with
// proxied/direct ratios and added latencies (or JSON with -json), and exits
// 1 if -check is given and a target is missed.
//
// Examples:
//
//	go run ./bench/cmd/amber-bench
//	go run ./bench/cmd/amber-bench -rounds 3 -duration 1s -scenarios produce,consume
//	go run ./bench/cmd/amber-bench -json > bench.json
//	go run ./bench/cmd/amber-bench -cpuprofile cpu.prof &&
//	  go tool pprof -top -tagfocus=bench=consume/proxy cpu.prof
//
// Progress, one line per run, goes to stderr; -q silences it.
package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/amber-kafka/amber/bench"
	"github.com/amber-kafka/amber/bench/runner"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o         bench.Options
		scenarios string
	)
	flag.DurationVar(&o.Duration, "duration", bench.DefaultDuration, "measured window of each run")
	flag.DurationVar(&o.Warmup, "warmup", bench.DefaultWarmup, "unmeasured warm-up before each window")
	flag.IntVar(&o.Rounds, "rounds", bench.DefaultRounds, "rounds per scenario, each one direct and one proxied run")
	flag.IntVar(&o.Brokers, "brokers", bench.DefaultBrokers, "kfake brokers")
	flag.IntVar(&o.Partitions, "partitions", bench.DefaultPartitions, "partitions of the benchmark topic")
	flag.IntVar(&o.RecordBytes, "record-bytes", bench.DefaultRecordBytes, "bytes per record value")
	flag.DurationVar(&o.Linger, "linger", bench.DefaultLinger, "producer linger of the produce throughput scenario (negative: none)")
	flag.Float64Var(&o.PacedRate, "rate", 0, "records/s of the paced latency scenario (0: half the direct produce rate)")
	flag.BoolVar(&o.FetchNodeEndpoints, "fetch-node-endpoints", false, "let the proxy's clients use Fetch v16+ and decode every Fetch response (proxy.Options.FetchNodeEndpoints) instead of splicing large ones")
	flag.StringVar(&scenarios, "scenarios", strings.Join(bench.Scenarios, ","), "comma-separated scenarios to run")
	c := &runner.Command{
		Name:          "amber-bench",
		Summary:       "Compares a franz-go client talking to kfake directly and through an Amber proxy.",
		ProfileLabels: "goroutines carry the pprof label bench=SCENARIO/COMPONENT[/MODE], e.g. produce/proxy",
		ProgressPer:   "run",
		Check:         "a target is missed",
		Missed:        "a target was missed",
	}
	if !c.Parse(flag.CommandLine, os.Args[1:]) {
		return 2
	}
	o.Scenarios = strings.Split(scenarios, ",")
	o.Progress = c.Progress()
	var err error
	if o.Logger, err = runner.Logger(); err != nil {
		return c.Fail(err)
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return c.BadUsage(err)
	}
	return c.Run(func(ctx context.Context) (runner.Report, error) { return bench.Run(ctx, o) })
}
