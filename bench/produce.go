package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
)

// NewProduceEnv is an Env whose brokers acknowledge produced records and
// discard them (kfake.BlackholeProduce), so that neither storing records
// nor memory growth in the broker limits a produce benchmark.
func NewProduceEnv(scenario string, o Options) (*Env, error) {
	return NewEnv(scenario, o, kfake.BlackholeProduce())
}

// ProduceThroughput runs one asynchronous produce throughput run in mode m:
// a single goroutine produces o.RecordBytes records as fast as the client
// accepts them (it blocks when its buffer is full), uncompressed, with
// o.Linger, acks=all and idempotence (franz-go's defaults). The result
// counts records acknowledged during the window.
func (e *Env) ProduceThroughput(ctx context.Context, m Mode) (Throughput, error) {
	var out Throughput
	err := e.withClient(ctx, m, e.produceOpts(e.opts.linger()), func(ctx context.Context, cl *kgo.Client) error {
		var (
			value = runner.RandomBytes(e.opts.RecordBytes)
			acked atomic.Int64
			fail  = runner.NewFirstErr()
			stop  atomic.Bool
			done  = make(chan struct{})
		)
		// Records are pooled: the promise is the client's last use of a
		// record, so it can be reset and handed out again.
		pool := sync.Pool{New: func() any { return &kgo.Record{Value: value} }}
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				fail.Set(fmt.Errorf("produce: %w", err))
			} else {
				acked.Add(1)
			}
			*r = kgo.Record{Value: value}
			pool.Put(r)
		}
		// Produce blocks while the client's buffer is full and returns as
		// acknowledgements free space. Its context is canceled only if
		// acknowledgements stop coming, so that the run fails instead of
		// hanging.
		produceCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer close(done)
			for !stop.Load() && fail.Err() == nil {
				cl.Produce(produceCtx, pool.Get().(*kgo.Record), promise)
			}
		}()
		var err error
		out, err = e.window(ctx, func() (int64, int64) {
			n := acked.Load()
			return n, n * int64(len(value))
		}, fail)
		stop.Store(true)
		select {
		case <-done:
		case <-time.After(flushTimeout):
			cancel()
			<-done
			if err == nil {
				err = fmt.Errorf("producer still blocked %s after the window: the cluster stopped acknowledging", flushTimeout)
			}
		}
		if ferr := runner.Flush(ctx, cl, flushTimeout); err == nil {
			err = ferr
		}
		return err
	})
	return out, err
}

// produceOpts configure a producer of uncompressed records to Topic with
// linger; acks=all and idempotence are franz-go's defaults.
func (e *Env) produceOpts(linger time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.DefaultProduceTopic(Topic),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
}

// flushTimeout bounds how long a run waits for its last acknowledgements.
const flushTimeout = 10 * time.Second
