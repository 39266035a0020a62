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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/amber-kafka/amber/bench/restorebench"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o          restorebench.Options
		shapes     string
		modes      string
		shapeMiB   int64
		jsonOut    = flag.Bool("json", false, "print the report as JSON instead of a table")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`; goroutines carry the pprof label bench=MODE or bench=kfake")
		quiet      = flag.Bool("q", false, "do not print a progress line per run on stderr")
		check      = flag.Bool("check", false, "exit 1 if a restore is slower than producing the same records")
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
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: amber-restore-bench [flags]\n\n"+
			"Compares restoring an archive with producing the same records, into kfake.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "amber-restore-bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	for _, s := range strings.Split(shapes, ",") {
		sh, err := restorebench.ParseShape(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
			return 2
		}
		o.Shapes = append(o.Shapes, sh)
	}
	o.Modes = strings.Split(modes, ",")
	o.ShapeBytes = shapeMiB << 20
	if !*quiet {
		o.Progress = os.Stderr
	}
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
		return 1
	}
	o.Logger = log
	if err := o.EnsureDefaults().Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "amber-restore-bench: start CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := restorebench.Run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "amber-restore-bench: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
		}
		return 1
	}
	if *jsonOut {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-restore-bench: %v\n", err)
		return 1
	}
	if *check && !rep.Passed() {
		fmt.Fprintln(os.Stderr, "amber-restore-bench: a restore was slower than producing the same records")
		return 1
	}
	return 0
}
