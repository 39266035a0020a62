package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
)

// The Benchmark functions are the same workloads as the runner's
// scenarios, sized by b.N instead of a time window, for benchstat:
//
//	go test ./bench -run '^$' -bench . -count 6 | tee new.txt
//	benchstat -col /mode new.txt
//
// Direct and proxied are sub-benchmarks of one benchmark, sharing one
// cluster and proxy. Prefer the runner (bench/cmd/amber-bench) for numbers
// to publish: it alternates the modes, which -count does not.

var modes = []Mode{Direct, Proxied}

// TestRun runs every scenario once, briefly, in both modes: the harness
// works and each number it reports is plausible.
func TestRun(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Duration: 200 * time.Millisecond,
		Warmup:   100 * time.Millisecond,
		Rounds:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"produce/mb_per_sec", "produce/records_per_sec", "produce/cpu_sec_per_gb",
		"consume/mb_per_sec", "consume/records_per_sec", "consume/cpu_sec_per_gb",
		"sync/p50_us", "sync/p99_us",
		"paced/p50_us", "paced/p99_us", "paced/records_per_sec",
	}
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Scenario+"/"+r.Metric)
		if len(r.DirectRuns) != 1 || len(r.ProxiedRuns) != 1 {
			t.Errorf("%s %s: %d direct and %d proxied runs, want 1 of each", r.Scenario, r.Metric, len(r.DirectRuns), len(r.ProxiedRuns))
		}
		if !(r.Direct > 0) || !(r.Proxied > 0) {
			t.Errorf("%s %s: direct %g, proxied %g: want both above 0", r.Scenario, r.Metric, r.Direct, r.Proxied)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if rep.Settings.PacedRate <= 0 {
		t.Errorf("paced rate %g, want half the direct produce rate", rep.Settings.PacedRate)
	}
}

// BenchmarkProduce produces b.N records asynchronously, as ScenarioProduce.
func BenchmarkProduce(b *testing.B) {
	env := newEnv(b, NewProduceEnv)
	for _, m := range modes {
		b.Run("mode="+m.String(), func(b *testing.B) {
			value := runner.RandomBytes(env.opts.RecordBytes)
			err := env.withClient(context.Background(), m, env.produceOpts(env.opts.linger()), func(ctx context.Context, cl *kgo.Client) error {
				fail := runner.NewFirstErr()
				promise := func(_ *kgo.Record, err error) {
					if err != nil {
						fail.Set(err)
					}
				}
				b.SetBytes(int64(len(value)))
				b.ResetTimer()
				for range b.N {
					cl.Produce(ctx, &kgo.Record{Value: value}, promise)
				}
				if err := runner.Flush(ctx, cl, flushTimeout); err != nil {
					return err
				}
				return fail.Err()
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkConsume polls b.N records from SyntheticFetch brokers, as
// ScenarioConsume.
func BenchmarkConsume(b *testing.B) {
	env := newEnv(b, NewConsumeEnv)
	for _, m := range modes {
		b.Run("mode="+m.String(), func(b *testing.B) {
			err := env.withClient(context.Background(), m, []kgo.Opt{
				kgo.ConsumeTopics(Topic),
			}, func(ctx context.Context, cl *kgo.Client) error {
				b.SetBytes(int64(env.opts.RecordBytes))
				b.ResetTimer()
				for n := 0; n < b.N; {
					fs := cl.PollFetches(ctx)
					if err := fs.Err0(); err != nil {
						return err
					}
					n += fs.NumRecords()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkProduceSync makes b.N sequential ProduceSync calls, as
// ScenarioSync, and reports their p50 and p99.
func BenchmarkProduceSync(b *testing.B) {
	env := newEnv(b, NewProduceEnv)
	for _, m := range modes {
		b.Run("mode="+m.String(), func(b *testing.B) {
			value := runner.RandomBytes(env.opts.RecordBytes)
			lat := make([]time.Duration, 0, b.N)
			err := env.withClient(context.Background(), m, env.produceOpts(0), func(ctx context.Context, cl *kgo.Client) error {
				// One unmeasured record opens the connections.
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
					return err
				}
				b.ResetTimer()
				for range b.N {
					t := time.Now()
					if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
						return err
					}
					lat = append(lat, time.Since(t))
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			l := summarize(lat, b.Elapsed())
			b.ReportMetric(runner.Micros(l.P50), "p50-µs")
			b.ReportMetric(runner.Micros(l.P99), "p99-µs")
		})
	}
}

// newEnv builds a default-sized Env with build for the benchmark, closed
// when it ends.
func newEnv(b *testing.B, build func(string, Options) (*Env, error)) *Env {
	b.Helper()
	env, err := build(b.Name(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Error(err)
		}
	})
	return env
}
