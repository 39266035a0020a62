package restorebench

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amber-kafka/amber/bench/runner"
	"github.com/amber-kafka/amber/restore"
)

// Report is the outcome of Run.
type Report struct {
	Time     time.Time     `json:"time"`
	Machine  Machine       `json:"machine"`
	Settings Settings      `json:"settings"`
	Shapes   []ShapeResult `json:"shapes"`
	// Notes are things the table should be read with, e.g. a check that
	// failed in a mode where it is only reported.
	Notes   []string `json:"notes,omitempty"`
	Elapsed string   `json:"elapsed"`
}

// Machine describes where a report was measured.
type Machine struct {
	runner.Machine
	// Load is the 1-minute load average before and after the run (Linux
	// only): on a shared machine, what else was running.
	Load [2]float64 `json:"load,omitempty"`
}

// Settings are the Options a report was measured with.
type Settings struct {
	Rounds      int      `json:"rounds"`
	Brokers     int      `json:"brokers"`
	Partitions  int      `json:"partitions"`
	RecordBytes int      `json:"record_bytes"`
	ShapeBytes  int64    `json:"shape_bytes"`
	Modes       []string `json:"modes"`
	// Parallelism is the restore's, 0 for its default.
	Parallelism int `json:"parallelism"`
}

// ShapeResult is one shape's workload and every mode's medians.
type ShapeResult struct {
	Shape        string       `json:"shape"`
	Records      int64        `json:"records"`
	RecordBytes  int64        `json:"record_bytes"`
	Batches      int64        `json:"batches"`
	WireBytes    int64        `json:"wire_bytes"`
	ArchiveBytes int64        `json:"archive_bytes"`
	Modes        []ModeResult `json:"modes"`
	// Ratio is restore over produce MB/s (medians) into the storing
	// cluster, held to TargetRatio; BlackholeRatio the same into the
	// blackhole cluster. 0 when a mode did not run.
	Ratio          float64 `json:"ratio"`
	Pass           *bool   `json:"pass,omitempty"`
	BlackholeRatio float64 `json:"blackhole_ratio"`
}

// ModeResult is one mode's medians over its runs.
type ModeResult struct {
	Mode      string   `json:"mode"`
	MBPerSec  float64  `json:"mb_per_sec"`
	CPUPerGB  float64  `json:"cpu_sec_per_gb"`
	MBPerCore float64  `json:"mb_per_cpu_sec"`
	Runs      []Sample `json:"runs"`
}

// loadAverage is the 1-minute load average, 0 where /proc/loadavg is
// not.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}

func newReport(o *Options, began time.Time) *Report {
	return &Report{
		Time:    began.UTC().Truncate(time.Second),
		Machine: Machine{Machine: runner.ThisMachine(), Load: [2]float64{loadAverage(), 0}},
		Settings: Settings{Rounds: o.Rounds, Brokers: o.Brokers, Partitions: o.Partitions, RecordBytes: o.RecordBytes,
			ShapeBytes: o.ShapeBytes, Modes: slices.Clone(o.Modes), Parallelism: o.Parallelism},
	}
}

func newModeResult(mode string, runs []Sample) ModeResult {
	med := func(f func(Sample) float64) float64 {
		xs := make([]float64, len(runs))
		for i, s := range runs {
			xs[i] = f(s)
		}
		return runner.Median(xs)
	}
	return ModeResult{Mode: mode, Runs: runs,
		MBPerSec:  med(func(s Sample) float64 { return s.MBPerSec }),
		CPUPerGB:  med(func(s Sample) float64 { return s.CPUPerGB }),
		MBPerCore: med(func(s Sample) float64 { return s.MBPerCore }),
	}
}

func (sr *ShapeResult) mode(name string) *ModeResult {
	for i := range sr.Modes {
		if sr.Modes[i].Mode == name {
			return &sr.Modes[i]
		}
	}
	return nil
}

// compare sets the ratios and the verdict.
func (sr *ShapeResult) compare() {
	ratio := func(a, b string) float64 {
		ma, mb := sr.mode(a), sr.mode(b)
		if ma == nil || mb == nil || mb.MBPerSec == 0 {
			return 0
		}
		return ma.MBPerSec / mb.MBPerSec
	}
	sr.Ratio = ratio(ModeRestore, ModeProduce)
	sr.BlackholeRatio = ratio(ModeRestoreBlackhole, ModeProduceBlackhole)
	if sr.Ratio > 0 {
		pass := sr.Ratio >= TargetRatio
		sr.Pass = &pass
	}
}

// Passed reports whether every shape met TargetRatio (where measured).
func (r *Report) Passed() bool {
	for _, s := range r.Shapes {
		if s.Pass != nil && !*s.Pass {
			return false
		}
	}
	return true
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return runner.WriteJSON(w, r) }

// WriteTable writes r for people: the machine and settings, then per
// shape one line per mode, and the restore/produce ratios.
func (r *Report) WriteTable(w io.Writer) error {
	s, m := r.Settings, r.Machine
	par := fmt.Sprintf("%d (default)", restore.DefaultParallelism)
	if s.Parallelism > 0 {
		par = fmt.Sprint(s.Parallelism)
	}
	load := ""
	if m.Load != [2]float64{} {
		load = fmt.Sprintf("  load %.1f→%.1f", m.Load[0], m.Load[1])
	}
	fmt.Fprintf(w, "amber-restore-bench  %s  %d CPUs (GOMAXPROCS %d)%s  %s %s/%s  took %s\n", r.Time.Format("2006-01-02 15:04Z"),
		m.CPUs, m.GOMAXPROCS, load, m.GoVersion, m.OS, m.Arch, r.Elapsed)
	fmt.Fprintf(w, "kfake %d brokers in process, %d partitions, %d B values, %d MiB per shape, restore parallelism %s; medians of %d rounds\n",
		s.Brokers, s.Partitions, s.RecordBytes, s.ShapeBytes>>20, par, s.Rounds)
	fmt.Fprintf(w, "MB = 10^6 bytes of keys and values; CPU = the whole process (client and kfake)\n\n")
	tw := runner.NewTable(w)
	fmt.Fprintln(tw, "shape\tbatches\tmode\tMB/s\tCPU s/GB\tMB/s per core\trestore/produce")
	for _, sr := range r.Shapes {
		for i, mr := range sr.Modes {
			shape, batches := "", ""
			if i == 0 {
				shape, batches = sr.Shape, fmt.Sprint(sr.Batches)
			}
			cmp := ""
			switch {
			case mr.Mode == ModeRestore && sr.Ratio > 0:
				verdict := "ok"
				if sr.Pass != nil && !*sr.Pass {
					verdict = "MISSED"
				}
				cmp = fmt.Sprintf("%.2f (≥ %.2f %s)", sr.Ratio, TargetRatio, verdict)
			case mr.Mode == ModeRestoreBlackhole && sr.BlackholeRatio > 0:
				cmp = fmt.Sprintf("%.2f", sr.BlackholeRatio)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shape, batches, mr.Mode,
				formatValue(mr.MBPerSec), formatValue(mr.CPUPerGB), formatValue(mr.MBPerCore), cmp)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	return nil
}

// formatValue prints a median with as many decimals as its size deserves.
func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
