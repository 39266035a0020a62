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
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/amber-kafka/amber/bench/archivebench"
	"github.com/amber-kafka/amber/bench/runner"
)

func main() {
	os.Exit(run())
}

// run returns the exit code: 0 ok, 1 failure or missed target with -check,
// 2 bad usage.
func run() int {
	var (
		o         archivebench.Options
		scenarios string
		sizes     string
		appenders string
		jsonFile  string
	)
	flag.StringVar(&jsonFile, "json-file", "", "also write the report as JSON to `file` (every run, not only medians)")
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
	c := &runner.Command{
		Name:          "amber-archive-bench",
		Summary:       "Measures the journal, the tee and the uploader against their baselines.",
		ProfileLabels: "goroutines carry the pprof label bench=SCENARIO/WHAT, e.g. paced/proxy/tee-sync",
		ProgressPer:   "run",
		Check:         "a target or check is missed",
		Missed:        "a target was missed",
	}
	if !c.Parse(flag.CommandLine, os.Args[1:]) {
		return 2
	}
	var err error
	o.Scenarios = strings.Split(scenarios, ",")
	if o.BatchSizes, err = ints(sizes); err == nil {
		o.Appenders, err = ints(appenders)
	}
	if err != nil {
		return c.BadUsage(err)
	}
	o.Progress = c.Progress()
	// Errors only, without stack traces, not runner.Logger's warnings: the
	// journal's write-stall warnings are counted in the report instead of
	// printed.
	if o.Logger, err = zap.NewDevelopment(zap.IncreaseLevel(zap.ErrorLevel), zap.AddStacktrace(zapcore.FatalLevel)); err != nil {
		return c.Fail(err)
	}
	if err := o.EnsureDefaults().Validate(); err != nil {
		return c.BadUsage(err)
	}
	return c.Run(func(ctx context.Context) (runner.Report, error) {
		rep, err := archivebench.Run(ctx, o)
		if err != nil {
			return nil, err
		}
		if jsonFile != "" {
			if err := writeJSONFile(rep, jsonFile); err != nil {
				return nil, err
			}
		}
		return rep, nil
	})
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
