package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/bench/runner"
	"github.com/amber-kafka/amber/proxy"
)

// Topic is the topic every scenario produces to or consumes from.
const Topic = "bench"

// Mode says how a client reaches the cluster.
type Mode int

const (
	// Direct clients dial the kfake brokers.
	Direct Mode = iota
	// Proxied clients dial the proxy's bootstrap listener and, through
	// the rewritten metadata, its per-broker listeners.
	Proxied
)

func (m Mode) String() string {
	if m == Proxied {
		return "proxied"
	}
	return "direct"
}

// Env is one kfake cluster and one Amber proxy in front of it, built for
// one scenario. Direct and proxied runs share it, so both see the same
// broker in the same state.
type Env struct {
	Cluster *kfake.Cluster
	Proxy   *proxy.Proxy

	opts     Options
	scenario string
}

// NewEnv starts a cluster of o.Brokers brokers with Topic seeded at
// o.Partitions partitions, configured further by kopts, and a proxy in
// front of it, everything on 127.0.0.1. Their goroutines carry pprof
// labels (see labels).
func NewEnv(scenario string, o Options, kopts ...kfake.Opt) (*Env, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Env{opts: o, scenario: scenario}
	var err error
	pprof.Do(context.Background(), labels(scenario, "kfake", ""), func(context.Context) {
		all := append([]kfake.Opt{
			kfake.NumBrokers(o.Brokers),
			kfake.SeedTopics(int32(o.Partitions), Topic),
		}, kopts...)
		e.Cluster, err = kfake.NewCluster(all...)
	})
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	pprof.Do(context.Background(), labels(scenario, "proxy", ""), func(context.Context) {
		e.Proxy, err = proxy.New(proxy.Options{
			Upstreams:          e.Cluster.ListenAddrs(),
			Listen:             "127.0.0.1:0",
			Logger:             o.Logger,
			FetchNodeEndpoints: o.FetchNodeEndpoints,
		})
		if err == nil {
			err = e.Proxy.Start()
		}
	})
	if err != nil {
		e.Cluster.Close()
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	return e, nil
}

// Bootstrap is the seed broker list a client in mode m is given.
func (e *Env) Bootstrap(m Mode) []string {
	if m == Proxied {
		return []string{e.Proxy.Addr()}
	}
	return e.Cluster.ListenAddrs()
}

// Close drains the proxy, then stops the cluster.
func (e *Env) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.Proxy.Shutdown(ctx)
	e.Cluster.Close()
	return err
}

// labels are the pprof labels of a goroutine of component (client, proxy
// or kfake) in scenario; mode is empty but for clients. Goroutines inherit
// them from the goroutine that starts them, so every connection goroutine
// of the proxy and kfake carries its component's labels. pprof's
// -tagfocus takes one key at a time, so "bench" joins the others:
// consume/proxy, produce/client/direct.
func labels(scenario, component, mode string) pprof.LabelSet {
	bench := scenario + "/" + component
	if mode == "" {
		return pprof.Labels("bench", bench, "component", component, "scenario", scenario)
	}
	bench += "/" + mode
	return pprof.Labels("bench", bench, "component", component, "scenario", scenario, "mode", mode)
}

// withClient creates a client for m with opts, runs fn with it under the
// pprof labels component=client, scenario and mode, and closes the client.
func (e *Env) withClient(ctx context.Context, m Mode, opts []kgo.Opt, fn func(context.Context, *kgo.Client) error) error {
	var err error
	pprof.Do(ctx, labels(e.scenario, "client", m.String()), func(ctx context.Context) {
		all := append([]kgo.Opt{kgo.SeedBrokers(e.Bootstrap(m)...)}, opts...)
		var cl *kgo.Client
		if cl, err = kgo.NewClient(all...); err != nil {
			err = fmt.Errorf("new %s client: %w", m, err)
			return
		}
		defer cl.Close()
		err = fn(ctx, cl)
	})
	return err
}

// Throughput is what one run moved during its measured window.
type Throughput struct {
	Records int64         // records acknowledged (produce) or polled (consume)
	Bytes   int64         // their value bytes
	Elapsed time.Duration // the window
	CPU     time.Duration // CPU time of the whole process during the window
}

// RecordsPerSec is Records over Elapsed.
func (t Throughput) RecordsPerSec() float64 { return float64(t.Records) / t.Elapsed.Seconds() }

// MBPerSec is Bytes over Elapsed, in MB (10⁶ bytes) per second.
func (t Throughput) MBPerSec() float64 { return float64(t.Bytes) / 1e6 / t.Elapsed.Seconds() }

// CPUPerGB is the process's CPU seconds per GB (10⁹ bytes) moved: client,
// broker and, in proxied runs, proxy together.
func (t Throughput) CPUPerGB() float64 { return t.CPU.Seconds() / (float64(t.Bytes) / 1e9) }

// window waits out the warm-up, then reads count and the process's CPU
// time when the measured window opens and when it closes. It returns early with the first error the
// workload reports to fail.
func (e *Env) window(ctx context.Context, count func() (records, bytes int64), fail *runner.FirstErr) (Throughput, error) {
	if err := fail.Sleep(ctx, e.opts.Warmup); err != nil {
		return Throughput{}, err
	}
	r0, b0 := count()
	t0, c0 := time.Now(), runner.ProcessCPU()
	if err := fail.Sleep(ctx, e.opts.Duration); err != nil {
		return Throughput{}, err
	}
	r1, b1 := count()
	return Throughput{Records: r1 - r0, Bytes: b1 - b0, Elapsed: time.Since(t0), CPU: runner.ProcessCPU() - c0}, nil
}
