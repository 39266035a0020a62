package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/amber-kafka/amber/bench/runner"
)

// Targets the proxy is held to. The ratios are proxied/direct throughput;
// the latency target is what the proxy may add to a p99.
const (
	TargetThroughputRatio = 0.95
	TargetAddedP99Micros  = 1000
)

// Report is the outcome of Run: the machine, the settings and one Result
// per metric.
type Report struct {
	Time     time.Time `json:"time"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Results  []Result  `json:"results"`
	Elapsed  string    `json:"elapsed"`
}

// Machine describes where a report was measured.
type Machine = runner.Machine

// Settings are the Options a report was measured with, defaults filled in.
type Settings struct {
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Rounds      int      `json:"rounds"`
	Brokers     int      `json:"brokers"`
	Partitions  int      `json:"partitions"`
	RecordBytes int      `json:"record_bytes"`
	Linger      string   `json:"linger"`
	Scenarios   []string `json:"scenarios"`
	// PacedRate is the records/s ScenarioPaced ran at, 0 if it did not.
	PacedRate float64 `json:"paced_rate,omitempty"`
	// FetchNodeEndpoints is the proxy option the run used.
	FetchNodeEndpoints bool `json:"fetch_node_endpoints,omitempty"`
}

// Result compares one metric of one scenario between the two modes. Direct
// and Proxied are the medians of the runs listed in DirectRuns and
// ProxiedRuns (one per round, in run order).
type Result struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"` // mb_per_sec, records_per_sec, cpu_sec_per_gb, p50_us, p99_us
	Direct   float64 `json:"direct"`
	Proxied  float64 `json:"proxied"`
	Ratio    float64 `json:"ratio"` // Proxied / Direct
	Added    float64 `json:"added"` // Proxied - Direct
	// Compare is "ratio" or "added": which of the two the table shows and
	// the target, if any, applies to.
	Compare string `json:"compare"`
	// Target is the limit Compare is held to, as text ("ratio >= 0.95");
	// empty for metrics that are shown but not judged.
	Target string `json:"target,omitempty"`
	// Pass is whether the target is met; absent without a target.
	Pass        *bool     `json:"pass,omitempty"`
	DirectRuns  []float64 `json:"direct_runs"`
	ProxiedRuns []float64 `json:"proxied_runs"`
}

// Passed reports whether every result with a target met it.
func (r *Report) Passed() bool {
	for _, res := range r.Results {
		if res.Pass != nil && !*res.Pass {
			return false
		}
	}
	return true
}

// Run runs every scenario o selects and compares direct with proxied.
// Each scenario gets its own cluster and proxy (see NewProduceEnv and
// NewConsumeEnv) and runs o.Rounds rounds, each one direct and one proxied
// run, in alternating order.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	rep := &Report{
		Time:    began.UTC().Truncate(time.Second),
		Machine: runner.ThisMachine(),
		Settings: Settings{
			Duration:    o.Duration.String(),
			Warmup:      o.Warmup.String(),
			Rounds:      o.Rounds,
			Brokers:     o.Brokers,
			Partitions:  o.Partitions,
			RecordBytes: o.RecordBytes,
			Linger:      o.linger().String(),
			Scenarios:   slices.Clone(o.Scenarios),

			FetchNodeEndpoints: o.FetchNodeEndpoints,
		},
	}

	// directRate is the median direct produce records/s, which sets the
	// paced scenario's rate.
	var directRate float64
	if o.runs(ScenarioProduce) {
		runs, err := runScenario(ctx, &o, ScenarioProduce, NewProduceEnv, (*Env).ProduceThroughput, Throughput.String)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, throughputResults(ScenarioProduce, runs)...)
		directRate = runner.Median(mapRuns(runs[Direct], Throughput.RecordsPerSec))
	}
	if o.runs(ScenarioConsume) {
		runs, err := runScenario(ctx, &o, ScenarioConsume, NewConsumeEnv, (*Env).ConsumeThroughput, Throughput.String)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, throughputResults(ScenarioConsume, runs)...)
	}
	if o.runs(ScenarioSync) {
		runs, err := runScenario(ctx, &o, ScenarioSync, NewProduceEnv, (*Env).SyncLatency, Latency.String)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, latencyResults(ScenarioSync, runs)...)
	}
	if o.runs(ScenarioPaced) {
		rate, err := pacedRate(ctx, &o, directRate)
		if err != nil {
			return nil, err
		}
		rep.Settings.PacedRate = rate
		paced := func(e *Env, ctx context.Context, m Mode) (Latency, error) { return e.PacedLatency(ctx, m, rate) }
		runs, err := runScenario(ctx, &o, ScenarioPaced, NewProduceEnv, paced, Latency.String)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, latencyResults(ScenarioPaced, runs)...)
		rep.Results = append(rep.Results, newResult(ScenarioPaced, "records_per_sec", runs, Latency.RecordsPerSec).ratio(0))
	}
	rep.Elapsed = time.Since(began).Round(100 * time.Millisecond).String()
	return rep, nil
}

// pacedRate is the paced scenario's rate: o.PacedRate if set, else half
// directRate, else half of one direct produce run made for the purpose.
func pacedRate(ctx context.Context, o *Options, directRate float64) (float64, error) {
	if o.PacedRate > 0 {
		return o.PacedRate, nil
	}
	if directRate == 0 {
		env, err := NewProduceEnv(ScenarioPaced, *o)
		if err != nil {
			return 0, err
		}
		defer env.Close()
		t, err := env.ProduceThroughput(ctx, Direct)
		if err != nil {
			return 0, fmt.Errorf("measure the direct produce rate for the paced scenario: %w", err)
		}
		directRate = t.RecordsPerSec()
	}
	return directRate / 2, nil
}

// runScenario builds scenario's Env with newEnv and runs one in both modes
// for o.Rounds rounds. The order of the modes flips every round (D P, P D,
// ...), so drift in the machine's speed lands on both; every run starts
// after a garbage collection, so no run pays for its predecessor's garbage.
func runScenario[T any](ctx context.Context, o *Options, scenario string,
	newEnv func(string, Options) (*Env, error),
	one func(*Env, context.Context, Mode) (T, error),
	describe func(T) string,
) (map[Mode][]T, error) {
	env, err := newEnv(scenario, *o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scenario, err)
	}
	defer env.Close()
	runs := make(map[Mode][]T)
	for i := range o.Rounds {
		order := []Mode{Direct, Proxied}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, m := range order {
			runtime.GC()
			r, err := one(env, ctx, m)
			if err != nil {
				return nil, fmt.Errorf("%s, %s run of round %d: %w", scenario, m, i+1, err)
			}
			runs[m] = append(runs[m], r)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "%-8s %-8s round %d/%d  %s\n", scenario, m, i+1, o.Rounds, describe(r))
			}
		}
	}
	return runs, nil
}

// throughputResults compares MB/s and records/s, both held to
// TargetThroughputRatio, and shows the CPU seconds per GB the proxy adds.
func throughputResults(scenario string, runs map[Mode][]Throughput) []Result {
	return []Result{
		newResult(scenario, "mb_per_sec", runs, Throughput.MBPerSec).ratio(TargetThroughputRatio),
		newResult(scenario, "records_per_sec", runs, Throughput.RecordsPerSec).ratio(TargetThroughputRatio),
		newResult(scenario, "cpu_sec_per_gb", runs, Throughput.CPUPerGB).added(0),
	}
}

// latencyResults compares p50 and p99 in µs; the p99 is held to
// TargetAddedP99Micros.
func latencyResults(scenario string, runs map[Mode][]Latency) []Result {
	return []Result{
		newResult(scenario, "p50_us", runs, func(l Latency) float64 { return runner.Micros(l.P50) }).added(0),
		newResult(scenario, "p99_us", runs, func(l Latency) float64 { return runner.Micros(l.P99) }).added(TargetAddedP99Micros),
	}
}

// newResult reads metric out of every run with value and compares the
// medians of the two modes.
func newResult[T any](scenario, metric string, runs map[Mode][]T, value func(T) float64) Result {
	r := Result{
		Scenario:    scenario,
		Metric:      metric,
		DirectRuns:  mapRuns(runs[Direct], value),
		ProxiedRuns: mapRuns(runs[Proxied], value),
	}
	r.Direct, r.Proxied = runner.Median(r.DirectRuns), runner.Median(r.ProxiedRuns)
	r.Ratio = r.Proxied / r.Direct
	r.Added = r.Proxied - r.Direct
	return r
}

// ratio makes r compare by ratio, held to at least min (0: no target).
func (r Result) ratio(min float64) Result {
	r.Compare = "ratio"
	if min > 0 {
		r.Target = fmt.Sprintf("ratio >= %.2f", min)
		r.Pass = ptr(r.Ratio >= min)
	}
	return r
}

// added makes r compare by difference, held to at most max (0: no target).
func (r Result) added(max float64) Result {
	r.Compare = "added"
	if max > 0 {
		r.Target = fmt.Sprintf("added <= %g", max)
		r.Pass = ptr(r.Added <= max)
	}
	return r
}

func mapRuns[T any](runs []T, value func(T) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = value(r)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func (t Throughput) String() string {
	return fmt.Sprintf("%8.1f MB/s %10.0f records/s %6.2f CPU s/GB", t.MBPerSec(), t.RecordsPerSec(), t.CPUPerGB())
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %6.0f µs  p99 %6.0f µs  max %6.0f µs  %8.0f records/s", runner.Micros(l.P50), runner.Micros(l.P99), runner.Micros(l.Max), l.RecordsPerSec())
}
