// Command amber-archive-bench measures what archiving costs: journal
// appends against a raw write+fsync of the same bytes, proxied produce
// with the tee off, async and sync (at maximum throughput and paced), and
// uploads to a real MinIO against minio-go PutObject of the same objects.
// It prints a table of medians and ratios (or JSON with -json) and exits 1
// if -check is given and a target is missed.
//
// Examples:
//
//	go run ./bench/cmd/amber-archive-bench
//	go run ./bench/cmd/amber-archive-bench -scenarios journal -rounds 3
//	go run ./bench/cmd/amber-archive-bench -json > archive-bench.json
//	go run ./bench/cmd/amber-archive-bench -json-file archive-bench.json  # table on stdout too
//	go run ./bench/cmd/amber-archive-bench -cpuprofile cpu.prof &&
//	  go tool pprof -top -tagfocus=bench=paced/proxy/tee-sync cpu.prof
//
// Progress, one line per run, goes to stderr; -q silences it. The upload
// scenario needs a MinIO server binary (-minio, $AMBER_MINIO,
// .tools/bin/minio or PATH).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/amber-kafka/amber/bench/archivebench"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o          archivebench.Options
		scenarios  string
		sizes      string
		appenders  string
		jsonOut    = flag.Bool("json", false, "print the report as JSON instead of a table")
		jsonFile   = flag.String("json-file", "", "also write the report as JSON to `file` (every run, not only medians)")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`; goroutines carry the pprof label bench=SCENARIO/WHAT, e.g. paced/proxy/tee-sync")
		quiet      = flag.Bool("q", false, "do not print a progress line per run on stderr")
		check      = flag.Bool("check", false, "exit 1 if a target or check is missed")
	)
	flag.StringVar(&scenarios, "scenarios", strings.Join(archivebench.Scenarios, ","), "comma-separated scenarios to run")
	flag.IntVar(&o.Rounds, "rounds", archivebench.DefaultRounds, "rounds of the journal, produce and paced scenarios, each running every variant once")
	flag.DurationVar(&o.Duration, "duration", archivebench.DefaultDuration, "measured window of each journal, produce and paced run")
	flag.DurationVar(&o.Warmup, "warmup", archivebench.DefaultWarmup, "unmeasured warm-up before each window")
	flag.StringVar(&o.Dir, "dir", os.TempDir(), "directory for journals, the raw log and MinIO's data (put it on the disk a proxy's --data would use)")
	flag.StringVar(&sizes, "batch-sizes", "16384,262144", "journal scenario: comma-separated batch sizes in bytes")
	flag.StringVar(&appenders, "appenders", "1,4,16", "journal scenario: comma-separated counts of concurrent appenders")
	flag.IntVar(&o.Brokers, "brokers", archivebench.DefaultBrokers, "kfake brokers")
	flag.IntVar(&o.Partitions, "partitions", archivebench.DefaultPartitions, "partitions of the produced topic")
	flag.IntVar(&o.RecordBytes, "record-bytes", archivebench.DefaultRecordBytes, "bytes per record value")
	flag.DurationVar(&o.Linger, "linger", archivebench.DefaultLinger, "producer linger (negative: none)")
	flag.Float64Var(&o.PacedMBps, "rate", archivebench.DefaultPacedMBps, "paced scenario: MB (10^6 B) of record values per second")
	flag.IntVar(&o.UploadRounds, "upload-rounds", archivebench.DefaultUploadRounds, "upload scenario: rounds per payload and encryption setting")
	flag.Int64Var(&o.UploadBytes, "upload-bytes", archivebench.DefaultUploadBytes, "upload scenario: bytes of record values produced per round")
	flag.IntVar(&o.FlushBytes, "flush-bytes", archivebench.DefaultFlushBytes, "upload scenario: the uploader's segment size (amber proxy --flush-bytes)")
	flag.StringVar(&o.MinIO, "minio", "", "MinIO server binary (default: $AMBER_MINIO, .tools/bin/minio, PATH)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: amber-archive-bench [flags]\n\n"+
			"Measures the journal, the tee and the uploader against their baselines.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "amber-archive-bench: unexpected arguments %q\n", flag.Args())
		return 2
	}
	var err error
	o.Scenarios = strings.Split(scenarios, ",")
	if o.BatchSizes, err = ints(sizes); err == nil {
		o.Appenders, err = ints(appenders)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
		return 2
	}
	if !*quiet {
		o.Progress = os.Stderr
	}
	// Errors only, without stack traces: the journal's write-stall
	// warnings are counted in the report instead of printed.
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.ErrorLevel), zap.AddStacktrace(zapcore.FatalLevel))
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
		return 1
	}
	o.Logger = log
	if err := o.EnsureDefaults().Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "amber-archive-bench: start CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := archivebench.Run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "amber-archive-bench: interrupted")
		} else {
			fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
		}
		return 1
	}
	if *jsonFile != "" {
		if err := writeJSONFile(rep, *jsonFile); err != nil {
			fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
			return 1
		}
	}
	if *jsonOut {
		err = rep.WriteJSON(os.Stdout)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "amber-archive-bench: %v\n", err)
		return 1
	}
	if *check && !rep.Passed() {
		fmt.Fprintln(os.Stderr, "amber-archive-bench: a target was missed")
		return 1
	}
	return 0
}

func writeJSONFile(rep *archivebench.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ints parses a comma-separated list of integers.
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: want comma-separated integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}
