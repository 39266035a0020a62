package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Defaults for Options fields left zero. Together they keep a full run
// (four scenarios, both modes) under two minutes on a 2-core machine.
const (
	DefaultDuration    = 1500 * time.Millisecond
	DefaultWarmup      = 300 * time.Millisecond
	DefaultRounds      = 5
	DefaultBrokers     = 3
	DefaultPartitions  = 8
	DefaultRecordBytes = 1024
	DefaultLinger      = time.Millisecond
)

// Scenario names, in the order Run runs them.
const (
	// ScenarioProduce is asynchronous produce throughput: one producer
	// keeps its buffer full for the whole window.
	ScenarioProduce = "produce"
	// ScenarioConsume is consume throughput from SyntheticFetch brokers.
	ScenarioConsume = "consume"
	// ScenarioSync is produce latency of sequential ProduceSync calls: one
	// record in flight at a time.
	ScenarioSync = "sync"
	// ScenarioPaced is per-record produce latency at a fixed rate, by
	// default half the direct maximum measured by ScenarioProduce.
	ScenarioPaced = "paced"
)

// Scenarios lists every scenario, in run order.
var Scenarios = []string{ScenarioProduce, ScenarioConsume, ScenarioSync, ScenarioPaced}

// Options configures a benchmark run. The zero value runs every scenario
// with the defaults above.
type Options struct {
	// Duration is the measured window of each run. Default
	// DefaultDuration.
	Duration time.Duration

	// Warmup is how long each run goes before its window opens. Default
	// DefaultWarmup.
	Warmup time.Duration

	// Rounds is how many direct and proxied runs each scenario makes
	// (one of each per round). Default DefaultRounds.
	Rounds int

	// Brokers is the size of the kfake cluster. Default DefaultBrokers.
	Brokers int

	// Partitions is the partition count of the benchmark topic. Default
	// DefaultPartitions.
	Partitions int

	// RecordBytes is the size of every record value, produced or served.
	// Default DefaultRecordBytes (1 KiB).
	RecordBytes int

	// Linger is the producer linger of the produce throughput and paced
	// latency scenarios. Default DefaultLinger; negative means no linger.
	// The sequential latency scenario always runs without linger.
	Linger time.Duration

	// Scenarios selects what runs, by name (see Scenarios). Default: all.
	Scenarios []string

	// PacedRate is the records/s of ScenarioPaced. Default 0: half the
	// median direct records/s of ScenarioProduce in the same run, measured
	// once on its own if ScenarioProduce is not selected.
	PacedRate float64

	// FetchNodeEndpoints is passed to the proxy (proxy.Options): true has
	// it decode every Fetch response instead of splicing large ones.
	// Default false, the proxy's default.
	FetchNodeEndpoints bool

	// Progress, when set, receives one line per run as it completes.
	Progress io.Writer

	// Logger receives the proxy's logs. Default zap.NewNop().
	Logger *zap.Logger
}

// EnsureDefaults fills in zero fields with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Rounds == 0 {
		o.Rounds = DefaultRounds
	}
	if o.Brokers == 0 {
		o.Brokers = DefaultBrokers
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.RecordBytes == 0 {
		o.RecordBytes = DefaultRecordBytes
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(Scenarios)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Validate reports every problem with o at once, joined.
func (o *Options) Validate() error {
	var errs []error
	if o.Duration < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("duration %s: want at least 10ms", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %s is negative", o.Warmup))
	}
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds %d: want at least 1", o.Rounds))
	}
	if o.Brokers < 1 {
		errs = append(errs, fmt.Errorf("brokers %d: want at least 1", o.Brokers))
	}
	if o.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions %d: want at least 1", o.Partitions))
	}
	if o.RecordBytes < 1 || o.RecordBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("record bytes %d: want 1 to 1048576", o.RecordBytes))
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q: want one of %v", s, Scenarios))
		}
	}
	if o.PacedRate < 0 {
		errs = append(errs, fmt.Errorf("paced rate %g is negative", o.PacedRate))
	}
	return errors.Join(errs...)
}

// linger is the producer linger to configure: Linger, with negative as 0.
func (o *Options) linger() time.Duration { return max(o.Linger, 0) }

// runs reports whether scenario s is selected.
func (o *Options) runs(s string) bool { return slices.Contains(o.Scenarios, s) }
