package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
)

// pacerTick is how often the paced producer wakes to catch up with its
// schedule, producing every record that fell due since the last wake-up in
// one burst. Finer sleeps are not honoured on the 2-core Firecracker VMs
// this runs on (a 50 µs time.Sleep takes 1.09 ms), and spinning instead
// would take a core from the system under test.
const pacerTick = time.Millisecond

// Latency summarizes the per-record produce latencies of one run.
type Latency struct {
	Samples       int           // records produced during the window
	Elapsed       time.Duration // the window
	P50, P99, Max time.Duration
}

// RecordsPerSec is the rate achieved during the window.
func (l Latency) RecordsPerSec() float64 { return float64(l.Samples) / l.Elapsed.Seconds() }

// summarize sorts lat and reads its percentiles.
func summarize(lat []time.Duration, elapsed time.Duration) Latency {
	slices.Sort(lat)
	return Latency{
		Samples: len(lat),
		Elapsed: elapsed,
		P50:     runner.Percentile(lat, 0.50),
		P99:     runner.Percentile(lat, 0.99),
		Max:     runner.Percentile(lat, 1),
	}
}

// SyncLatency runs one sequential produce latency run in mode m: one
// ProduceSync after another, one record in flight at a time. A record's
// latency is the duration of its ProduceSync call. The producer does not
// linger: with one record in flight there is nothing to wait for.
func (e *Env) SyncLatency(ctx context.Context, m Mode) (Latency, error) {
	var out Latency
	err := e.withClient(ctx, m, e.produceOpts(0), func(ctx context.Context, cl *kgo.Client) error {
		var (
			value = runner.RandomBytes(e.opts.RecordBytes)
			r     = new(kgo.Record)
			lat   = make([]time.Duration, 0, 1<<14)
			open  = time.Now().Add(e.opts.Warmup)
			end   = open.Add(e.opts.Duration)
		)
		for {
			t := time.Now()
			if !t.Before(end) {
				break
			}
			*r = kgo.Record{Value: value}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return fmt.Errorf("produce: %w", err)
			}
			if !t.Before(open) {
				lat = append(lat, time.Since(t))
			}
		}
		out = summarize(lat, e.opts.Duration)
		return nil
	})
	return out, err
}

// PacedLatency runs one paced produce latency run in mode m: records are
// produced asynchronously on a fixed schedule of rate records/s (in small
// bursts every pacerTick), and a record's latency runs from its Produce call
// to its acknowledgement. The producer is configured as ProduceThroughput's
// (o.Linger), so that a rate derived from that scenario's maximum means
// what it says.
//
// Each record carries its send time in Timestamp, which the client keeps
// (it only fills in a zero Timestamp), so the promise needs no lookup.
func (e *Env) PacedLatency(ctx context.Context, m Mode, rate float64) (Latency, error) {
	if rate <= 0 {
		return Latency{}, fmt.Errorf("paced rate %g: want above 0", rate)
	}
	var out Latency
	err := e.withClient(ctx, m, e.produceOpts(e.opts.linger()), func(ctx context.Context, cl *kgo.Client) error {
		var (
			value = runner.RandomBytes(e.opts.RecordBytes)
			fail  = runner.NewFirstErr()
			start = time.Now()
			open  = start.Add(e.opts.Warmup)
			end   = open.Add(e.opts.Duration)
			mu    sync.Mutex // guards lat: promises may run concurrently
			lat   = make([]time.Duration, 0, int(rate*e.opts.Duration.Seconds()*1.1))
		)
		pool := sync.Pool{New: func() any { return new(kgo.Record) }}
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				fail.Set(fmt.Errorf("produce: %w", err))
			} else if t := r.Timestamp; !t.Before(open) && t.Before(end) {
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
			pool.Put(r)
		}
		for sent := int64(0); fail.Err() == nil; time.Sleep(pacerTick) {
			now := time.Now()
			if !now.Before(end) {
				break
			}
			due := int64(now.Sub(start).Seconds()*rate) + 1
			for ; sent < due; sent++ {
				r := pool.Get().(*kgo.Record)
				*r = kgo.Record{Value: value, Timestamp: time.Now()}
				cl.Produce(ctx, r, promise)
			}
		}
		if err := runner.Flush(ctx, cl, flushTimeout); err != nil {
			return err
		}
		if err := fail.Err(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		out = summarize(lat, e.opts.Duration)
		return nil
	})
	return out, err
}
