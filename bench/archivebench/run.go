package archivebench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/amber-kafka/amber/bench/runner"
)

// Targets from the issue that asked for the tee and uploader.
const (
	// TargetAsyncRatio: the tee in async mode may cost at most 5% of
	// proxied produce throughput.
	TargetAsyncRatio = 0.95
	// TargetSyncRatio: in sync mode at most 10%.
	TargetSyncRatio = 0.90
	// TargetUploadRatio: the uploader moves at least 90% of what a plain
	// PutObject of the same bytes does.
	TargetUploadRatio = 0.90
	// sustainedShare is the share of the offered paced rate a variant
	// must reach to count as sustaining it.
	sustainedShare = 0.97
)

// Run runs every scenario o selects. Each alternates its variants within
// rounds, rotating their order from round to round, so that drift of the
// machine lands on every variant alike.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.stalls = new(stallCounter)
	o.Logger = o.stalls.wrap(o.Logger)
	began := time.Now()
	rep := &Report{
		Time:    began.UTC().Truncate(time.Second),
		Machine: runner.ThisMachine(),
		Settings: Settings{
			Scenarios: slices.Clone(o.Scenarios), Rounds: o.Rounds, Duration: o.Duration.String(), Warmup: o.Warmup.String(),
			Dir: o.Dir, BatchSizes: o.BatchSizes, Appenders: o.Appenders, Brokers: o.Brokers, Partitions: o.Partitions,
			RecordBytes: o.RecordBytes, Linger: o.linger().String(), PacedMBps: o.PacedMBps,
			UploadRounds: o.UploadRounds, UploadBytes: o.UploadBytes, FlushBytes: o.FlushBytes,
		},
	}
	if o.runs(ScenarioJournal) {
		for _, size := range o.BatchSizes {
			for _, n := range o.Appenders {
				res, err := runJournal(ctx, &o, size, n)
				if err != nil {
					return nil, err
				}
				rep.Journal = append(rep.Journal, res)
			}
		}
	}
	for _, s := range []string{ScenarioProduce, ScenarioPaced} {
		if !o.runs(s) {
			continue
		}
		res, err := runTee(ctx, &o, s)
		if err != nil {
			return nil, err
		}
		if s == ScenarioProduce {
			rep.Produce = res
		} else {
			rep.Paced = res
		}
	}
	if o.runs(ScenarioUpload) {
		env, err := NewUploadEnv(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		for _, cfg := range o.UploadConfigs {
			runs, err := env.RunConfig(ctx, cfg)
			if err != nil {
				env.Close()
				return nil, err
			}
			rep.Upload = append(rep.Upload, uploadResult(cfg, runs))
		}
		if err := env.Close(); err != nil {
			return nil, fmt.Errorf("stop MinIO: %w", err)
		}
	}
	rep.judge()
	rep.Elapsed = time.Since(began).Round(100 * time.Millisecond).String()
	return rep, nil
}

// runJournal runs o.Rounds rounds of the journal and the raw log with
// appenders appenders of size-byte batches.
func runJournal(ctx context.Context, o *Options, size, appenders int) (JournalResult, error) {
	runs := make(map[string][]AppendRun)
	for round := range o.Rounds {
		for _, v := range rotate([]string{VariantJournal, VariantRaw}, round) {
			r, err := collect(func() (AppendRun, error) { return AppendThroughput(ctx, *o, v, size, appenders) })
			if err != nil {
				return JournalResult{}, fmt.Errorf("journal %s, %d B × %d, round %d: %w", v, size, appenders, round+1, err)
			}
			runs[v] = append(runs[v], r)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "%-8s %-8s %4d KiB × %-2d round %d/%d  %s\n", ScenarioJournal, v, size>>10, appenders, round+1, o.Rounds, r)
			}
		}
	}
	mb := func(r AppendRun) float64 { return r.MBPerSec }
	return JournalResult{
		BatchBytes: size, Appenders: appenders,
		Journal: medianAppend(runs[VariantJournal]), Raw: medianAppend(runs[VariantRaw]),
		Ratio:       pairedRatio(runs[VariantJournal], runs[VariantRaw], mb),
		JournalRuns: runs[VariantJournal], RawRuns: runs[VariantRaw],
	}, nil
}

// runTee runs o.Rounds rounds of scenario (ScenarioProduce or
// ScenarioPaced) with every tee variant, a new proxy (and journal) for
// each run, in front of one cluster.
func runTee(ctx context.Context, o *Options, scenario string) (*TeeResult, error) {
	c, err := NewCluster(scenario, *o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	runs := make(map[string][]ProduceRun)
	for round := range o.Rounds {
		for _, v := range rotate(TeeVariants, round) {
			r, err := collect(func() (ProduceRun, error) {
				s0 := o.stalls.load()
				tp, err := c.StartProxy(v)
				if err != nil {
					return ProduceRun{}, err
				}
				var r ProduceRun
				if scenario == ScenarioPaced {
					r, err = PacedProduce(ctx, *o, tp, o.pacedRate())
				} else {
					r, err = ProduceThroughput(ctx, *o, tp)
				}
				if cerr := tp.Close(); err == nil {
					err = cerr
				}
				r.Stalls = o.stalls.load() - s0
				return r, err
			})
			if err != nil {
				return nil, fmt.Errorf("%s %s, round %d: %w", scenario, v, round+1, err)
			}
			runs[v] = append(runs[v], r)
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "%-8s %-9s round %d/%d  %s\n", scenario, v, round+1, o.Rounds, r)
			}
		}
	}
	res := &TeeResult{}
	if scenario == ScenarioPaced {
		res.OfferedMBPerSec = o.PacedMBps
	}
	off := runs[VariantOff]
	for _, v := range TeeVariants {
		rs := runs[v]
		vr := TeeVariantResult{Variant: v, Median: medianProduce(rs), Runs: rs}
		if v != VariantOff {
			vr.ThroughputRatio = pairedRatio(rs, off, func(r ProduceRun) float64 { return r.MBPerSec })
			// CPU per GB of the variant over off's, inverted: the share
			// of off's throughput the same CPU buys with the tee on.
			vr.CPURatio = 1 / pairedRatio(rs, off, func(r ProduceRun) float64 { return r.CPUPerGB })
			vr.AddedCPUPerGB = vr.Median.CPUPerGB - medianOf(off, func(r ProduceRun) float64 { return r.CPUPerGB })
			vr.AddedP99Micros = vr.Median.P99Micros - medianOf(off, func(r ProduceRun) float64 { return r.P99Micros })
		}
		res.Variants = append(res.Variants, vr)
	}
	return res, nil
}

func medianAppend(rs []AppendRun) AppendRun {
	m := func(f func(AppendRun) float64) float64 { return medianOf(rs, f) }
	return AppendRun{
		MBPerSec:      m(func(r AppendRun) float64 { return r.MBPerSec }),
		AppendsPerSec: m(func(r AppendRun) float64 { return r.AppendsPerSec }),
		SyncsPerSec:   m(func(r AppendRun) float64 { return r.SyncsPerSec }),
		PerSync:       m(func(r AppendRun) float64 { return r.PerSync }),
		P50Micros:     m(func(r AppendRun) float64 { return r.P50Micros }),
		P99Micros:     m(func(r AppendRun) float64 { return r.P99Micros }),
		CPUPerGB:      m(func(r AppendRun) float64 { return r.CPUPerGB }),
		Stalls:        int64(m(func(r AppendRun) float64 { return float64(r.Stalls) })),
	}
}

func medianProduce(rs []ProduceRun) ProduceRun {
	m := func(f func(ProduceRun) float64) float64 { return medianOf(rs, f) }
	out := ProduceRun{
		MBPerSec:        m(func(r ProduceRun) float64 { return r.MBPerSec }),
		RecordsPerSec:   m(func(r ProduceRun) float64 { return r.RecordsPerSec }),
		CPUPerGB:        m(func(r ProduceRun) float64 { return r.CPUPerGB }),
		P50Micros:       m(func(r ProduceRun) float64 { return r.P50Micros }),
		P99Micros:       m(func(r ProduceRun) float64 { return r.P99Micros }),
		JournalMBPerSec: m(func(r ProduceRun) float64 { return r.JournalMBPerSec }),
		CommitsPerSec:   m(func(r ProduceRun) float64 { return r.CommitsPerSec }),
	}
	for _, r := range rs { // totals, not medians: any drop or stall matters
		out.Dropped += r.Dropped
		out.SyncTimeouts += r.SyncTimeouts
		out.Stalls += r.Stalls
	}
	return out
}

func uploadResult(cfg UploadConfig, runs []UploadRun) UploadResult {
	m := func(f func(UploadRun) float64) float64 { return medianOf(runs, f) }
	res := UploadResult{
		Config:            cfg,
		ValueBytes:        m(func(r UploadRun) float64 { return float64(r.ValueBytes) }),
		ObjectsPerGB:      m(func(r UploadRun) float64 { return perGB(float64(r.Objects), r.ValueBytes) }),
		SegmentBytes:      m(func(r UploadRun) float64 { return float64(r.StoredBytes) / float64(max(r.Segments, 1)) }),
		StoredPerProduced: m(func(r UploadRun) float64 { return float64(r.StoredBytes) / float64(r.ValueBytes) }),
		BatchPerProduced:  m(func(r UploadRun) float64 { return float64(r.BatchBytes) / float64(r.ValueBytes) }),
		Transfers:         make(map[string]Transfer),
		Runs:              runs,
	}
	for _, v := range UploadVariants {
		t := func(f func(Transfer) float64) float64 {
			return m(func(r UploadRun) float64 { return f(r.Transfers[v]) })
		}
		res.Transfers[v] = Transfer{
			Seconds:       t(func(x Transfer) float64 { return x.Seconds }),
			MBPerSec:      t(func(x Transfer) float64 { return x.MBPerSec }),
			ValuesPerSec:  t(func(x Transfer) float64 { return x.ValuesPerSec }),
			CPUPerGB:      t(func(x Transfer) float64 { return x.CPUPerGB }),
			MinIOCPUPerGB: t(func(x Transfer) float64 { return x.MinIOCPUPerGB }),
		}
	}
	// Each round's put variants wrote the objects of that round's
	// uploader run or of the previous round's (same configuration, same
	// size within a few percent), so compare rates, paired by round.
	rate := func(v string) func(UploadRun) float64 {
		return func(r UploadRun) float64 { return r.Transfers[v].MBPerSec }
	}
	res.Ratio = medianOf(runs, func(r UploadRun) float64 { return rate(VariantUploader)(r) / rate(VariantPut)(r) })
	res.RatioSingle = medianOf(runs, func(r UploadRun) float64 { return rate(VariantUploader)(r) / rate(VariantPutSingle)(r) })
	return res
}

// judge fills in rep.Targets.
func (rep *Report) judge() {
	add := func(name string, value, limit float64) {
		rep.Targets = append(rep.Targets, Target{Name: name, Value: value, Min: limit, Pass: value >= limit})
	}
	check := func(name string, value, limit float64) {
		rep.Targets = append(rep.Targets, Target{Name: name, Value: value, Min: limit, Pass: value >= limit, Check: true})
	}
	if rep.Produce != nil {
		for _, v := range rep.Produce.Variants {
			switch v.Variant {
			case VariantAsync:
				add("max produce throughput, tee-async / off", v.ThroughputRatio, TargetAsyncRatio)
			case VariantSync:
				add("max produce throughput, tee-sync / off", v.ThroughputRatio, TargetSyncRatio)
			}
		}
	}
	if p := rep.Paced; p != nil {
		for _, v := range p.Variants {
			check(fmt.Sprintf("at %.0f MB/s, %s achieved / offered", p.OfferedMBPerSec, v.Variant), v.Median.MBPerSec/p.OfferedMBPerSec, sustainedShare)
			switch v.Variant {
			case VariantAsync:
				add(fmt.Sprintf("at %.0f MB/s, CPU/GB off / tee-async", p.OfferedMBPerSec), v.CPURatio, TargetAsyncRatio)
			case VariantSync:
				add(fmt.Sprintf("at %.0f MB/s, CPU/GB off / tee-sync", p.OfferedMBPerSec), v.CPURatio, TargetSyncRatio)
			}
		}
	}
	for _, u := range rep.Upload {
		add(fmt.Sprintf("upload %s, uploader / PutObject", u.Config), u.Ratio, TargetUploadRatio)
	}
}
