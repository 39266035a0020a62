package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
)

// NewConsumeEnv is an Env whose brokers answer every fetch with copies of
// one canned, uncompressed batch of o.RecordBytes records filling about a
// megabyte (kfake.SyntheticFetch), so that no log has to be produced first
// and reading it does not limit a consume benchmark.
func NewConsumeEnv(scenario string, o Options) (*Env, error) {
	o.EnsureDefaults()
	return NewEnv(scenario, o, kfake.BlackholeProduce(), kfake.SyntheticFetch(kfake.SyntheticBatch{
		RecordBytes: o.RecordBytes,
		RandomFrac:  1, // incompressible, like the produce scenarios' values
	}))
}

// ConsumeThroughput runs one consume throughput run in mode m: a direct
// (group-less) consumer of every partition of Topic from offset 0, with
// franz-go's default fetch sizes, polls in a loop and visits every record.
// The result counts records polled during the window.
func (e *Env) ConsumeThroughput(ctx context.Context, m Mode) (Throughput, error) {
	var out Throughput
	err := e.withClient(ctx, m, []kgo.Opt{
		kgo.ConsumeTopics(Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, func(ctx context.Context, cl *kgo.Client) error {
		var (
			records, bytes atomic.Int64
			fail           = runner.NewFirstErr()
			done           = make(chan struct{})
		)
		pollCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer close(done)
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				for _, fe := range fs.Errors() {
					if pollCtx.Err() == nil || !errors.Is(fe.Err, context.Canceled) {
						fail.Set(fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err))
						return
					}
				}
				var n, b int64
				fs.EachRecord(func(r *kgo.Record) {
					n++
					b += int64(len(r.Value))
				})
				records.Add(n)
				bytes.Add(b)
			}
		}()
		var err error
		out, err = e.window(ctx, func() (int64, int64) { return records.Load(), bytes.Load() }, fail)
		stop()
		<-done
		return err
	})
	return out, err
}
