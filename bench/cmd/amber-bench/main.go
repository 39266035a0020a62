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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/bench"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o          bench.Options
		scenarios  string
		jsonOut    = flag.Bool("json", false, "print the report as JSON instead of a table")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`; goroutines carry the pprof label bench=SCENARIO/COMPONENT[/MODE], e.g. produce/proxy")
		quiet      = flag.Bool("q", false, "do not print a progress line per run on stderr")
		check      = flag.Bool("check", false, "exit 1 if a target is missed")
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
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: amber-bench [flags]\n\n"+
			"Compares a franz-go client talking to kfake directly and through an Amber proxy.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "amber-bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	o.Scenarios = strings.Split(scenarios, ",")
	if !*quiet {
		o.Progress = os.Stderr
	}
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-bench: %v\n", err)
		return 1
	}
	o.Logger = log
	if err := o.EnsureDefaults().Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "amber-bench: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "amber-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "amber-bench: start CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := bench.Run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "amber-bench: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "amber-bench: %v\n", err)
		}
		return 1
	}
	if *jsonOut {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-bench: %v\n", err)
		return 1
	}
	if *check && !rep.Passed() {
		fmt.Fprintln(os.Stderr, "amber-bench: a target was missed")
		return 1
	}
	return 0
}
