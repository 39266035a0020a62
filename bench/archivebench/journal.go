package archivebench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/bench/runner"
)

// Journal variants.
const (
	// VariantJournal appends through archive.Journal: one Pebble batch
	// and one fsync per group commit.
	VariantJournal = "journal"
	// VariantRaw appends through rawLog: the same bytes, grouped the same
	// way, written to a plain file with one write(2) and one fsync(2) per
	// group.
	VariantRaw = "raw"
)

// AppendRun is one journal-scenario run: appenders goroutines, each
// appending one batch of batchBytes and waiting for its commit, over the
// measured window.
type AppendRun struct {
	MBPerSec      float64 `json:"mb_per_sec"`       // batch bytes committed per second
	AppendsPerSec float64 `json:"appends_per_sec"`  // appends committed per second
	SyncsPerSec   float64 `json:"syncs_per_sec"`    // group commits (fsyncs) per second
	PerSync       float64 `json:"appends_per_sync"` // appends per group commit
	P50Micros     float64 `json:"p50_us"`           // append → commit confirmed
	P99Micros     float64 `json:"p99_us"`
	CPUPerGB      float64 `json:"cpu_sec_per_gb"` // process CPU per GB committed
	// Stalls counts the journal's write stalls during the run (Pebble
	// stopped taking writes until a memtable flush or compaction caught
	// up); the median in a JournalResult.
	Stalls int64 `json:"stalls"`
}

func (r AppendRun) String() string {
	s := fmt.Sprintf("%8.1f MB/s %7.0f fsync/s %5.1f per fsync  p50 %6.0f µs p99 %6.0f µs %5.2f CPU s/GB",
		r.MBPerSec, r.SyncsPerSec, r.PerSync, r.P50Micros, r.P99Micros, r.CPUPerGB)
	if r.Stalls > 0 {
		s += fmt.Sprintf("  %d write stalls", r.Stalls)
	}
	return s
}

// appendLog is what the journal scenario appends to: the journal, or the
// raw baseline.
type appendLog interface {
	// append queues data (batch i of appender g) for the next group
	// commit and returns a channel that receives its outcome.
	append(g int, i int64, data []byte) (<-chan error, error)
	// syncs is the number of group commits so far.
	syncs() int64
	close() error
}

// AppendThroughput makes one run of variant (VariantJournal or
// VariantRaw) in a new directory under o.Dir, removed afterwards.
func AppendThroughput(ctx context.Context, o Options, variant string, batchBytes, appenders int) (AppendRun, error) {
	o.EnsureDefaults()
	dir, err := os.MkdirTemp(o.Dir, "archivebench-"+variant+"-")
	if err != nil {
		return AppendRun{}, err
	}
	defer os.RemoveAll(dir)
	var l appendLog
	pprof.Do(ctx, labels(ScenarioJournal, variant), func(context.Context) {
		switch variant {
		case VariantJournal:
			var j *archive.Journal
			j, err = archive.OpenJournal(archive.JournalOptions{Dir: dir, Logger: o.Logger})
			l = journalLog{j}
		case VariantRaw:
			l, err = openRawLog(dir)
		default:
			err = fmt.Errorf("unknown journal variant %q", variant)
		}
	})
	if err != nil {
		return AppendRun{}, err
	}
	s0 := o.stalls.load()
	run, err := appendWindow(ctx, o, l, batchBytes, appenders, variant)
	if cerr := l.close(); err == nil {
		err = cerr
	}
	run.Stalls = o.stalls.load() - s0
	return run, err
}

// appendWindow runs the appenders against l through the warm-up and the
// measured window.
func appendWindow(ctx context.Context, o Options, l appendLog, batchBytes, appenders int, variant string) (AppendRun, error) {
	data := runner.RandomBytes(batchBytes) // incompressible: Pebble's block compression gains nothing
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		bytes     atomic.Int64
		appends   atomic.Int64
		lats      = make([][]time.Duration, appenders)
		errs      = make([]error, appenders)
		wg        sync.WaitGroup
	)
	pprof.Do(ctx, labels(ScenarioJournal, variant+"/appender"), func(context.Context) {
		for g := range appenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := make([]time.Duration, 0, 1<<12)
				for i := int64(0); !stop.Load(); i++ {
					t := time.Now()
					done, err := l.append(g, i, data)
					if err == nil {
						err = <-done
					}
					if err != nil {
						errs[g] = fmt.Errorf("appender %d: %w", g, err)
						return
					}
					if measuring.Load() {
						lat = append(lat, time.Since(t))
						bytes.Add(int64(len(data)))
						appends.Add(1)
					}
				}
				lats[g] = lat
			}()
		}
	})
	sleep(ctx, o.Warmup)
	s0, c0, t0 := l.syncs(), runner.ProcessCPU(), time.Now()
	measuring.Store(true)
	sleep(ctx, o.Duration)
	measuring.Store(false)
	s1, c1, elapsed := l.syncs(), runner.ProcessCPU(), time.Since(t0)
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return AppendRun{}, err
	}
	if err := ctx.Err(); err != nil {
		return AppendRun{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	n, b := appends.Load(), bytes.Load()
	return AppendRun{
		MBPerSec:      mbps(b, elapsed),
		AppendsPerSec: float64(n) / elapsed.Seconds(),
		SyncsPerSec:   float64(s1-s0) / elapsed.Seconds(),
		PerSync:       float64(n) / float64(max(s1-s0, 1)),
		P50Micros:     runner.Micros(runner.Percentile(all, 0.50)),
		P99Micros:     runner.Micros(runner.Percentile(all, 0.99)),
		CPUPerGB:      perGB((c1 - c0).Seconds(), b),
	}, nil
}

// journalLog appends to an archive.Journal: batch i of appender g goes to
// partition g at offset i of one topic, as the tee would journal it.
type journalLog struct{ j *archive.Journal }

func (l journalLog) append(g int, i int64, data []byte) (<-chan error, error) {
	return l.j.Append([]archive.Batch{{
		Topic: benchTopic, Partition: int32(g), BaseOffset: i, AckTime: time.Now(),
		LogAppendTime: -1, ClientID: "archivebench", Data: data,
	}}, nil)
}
func (l journalLog) syncs() int64 { return l.j.Stats().Commits }
func (l journalLog) close() error { return l.j.Close() }

// rawLog is the baseline the journal is held to: an append-only file with
// the journal's grouping and nothing else. Appenders queue their data
// under mu; one writer goroutine takes everything queued, copies it into
// one buffer (as the journal copies batches into one Pebble batch), writes
// it with one write(2), calls fsync(2) (os.File.Sync) and tells every
// waiter. It keeps no index, no keys, no duplicate check and no
// memtable, and does not preallocate or recycle its file.
type rawLog struct {
	f    *os.File
	wake chan struct{} // 1-slot: something is queued
	stop chan struct{}
	done chan struct{}
	n    atomic.Int64 // fsyncs

	mu struct {
		sync.Mutex
		data    [][]byte
		waiters []chan error
	}
}

func openRawLog(dir string) (*rawLog, error) {
	f, err := os.OpenFile(dir+"/raw.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l := &rawLog{f: f, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l, nil
}

func (l *rawLog) append(_ int, _ int64, data []byte) (<-chan error, error) {
	ch := make(chan error, 1)
	l.mu.Lock()
	l.mu.data = append(l.mu.data, data)
	l.mu.waiters = append(l.mu.waiters, ch)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return ch, nil
}

func (l *rawLog) loop() {
	defer close(l.done)
	var buf []byte
	for {
		select {
		case <-l.wake:
		case <-l.stop:
			return
		}
		l.mu.Lock()
		data, waiters := l.mu.data, l.mu.waiters
		l.mu.data, l.mu.waiters = nil, nil
		l.mu.Unlock()
		if len(waiters) == 0 {
			continue // a wake-up for data an earlier group took
		}
		buf = buf[:0]
		for _, d := range data {
			buf = append(buf, d...)
		}
		_, err := l.f.Write(buf)
		if err == nil {
			err = l.f.Sync()
		}
		l.n.Add(1)
		for _, w := range waiters {
			w <- err
		}
	}
}

func (l *rawLog) syncs() int64 { return l.n.Load() }

func (l *rawLog) close() error {
	close(l.stop)
	<-l.done
	return l.f.Close()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// collect runs GC, then fn, for a run that should not pay for its
// predecessor's garbage.
func collect[T any](fn func() (T, error)) (T, error) {
	runtime.GC()
	return fn()
}
