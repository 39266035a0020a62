package archivebench

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/amber-kafka/amber/bench/runner"
)

// Report is the outcome of Run.
type Report struct {
	Time     time.Time       `json:"time"`
	Machine  Machine         `json:"machine"`
	Settings Settings        `json:"settings"`
	Journal  []JournalResult `json:"journal,omitempty"`
	Produce  *TeeResult      `json:"produce,omitempty"`
	Paced    *TeeResult      `json:"paced,omitempty"`
	Upload   []UploadResult  `json:"upload,omitempty"`
	Targets  []Target        `json:"targets"`
	Elapsed  string          `json:"elapsed"`
}

// Machine describes where a report was measured.
type Machine = runner.Machine

// Settings are the Options a report was measured with, defaults filled in.
type Settings struct {
	Scenarios    []string `json:"scenarios"`
	Rounds       int      `json:"rounds"`
	Duration     string   `json:"duration"`
	Warmup       string   `json:"warmup"`
	Dir          string   `json:"dir"`
	BatchSizes   []int    `json:"batch_sizes"`
	Appenders    []int    `json:"appenders"`
	Brokers      int      `json:"brokers"`
	Partitions   int      `json:"partitions"`
	RecordBytes  int      `json:"record_bytes"`
	Linger       string   `json:"linger"`
	PacedMBps    float64  `json:"paced_mb_per_sec"`
	UploadRounds int      `json:"upload_rounds"`
	UploadBytes  int64    `json:"upload_bytes"`
	FlushBytes   int      `json:"flush_bytes"`
}

// JournalResult compares the journal with the raw log for one batch size
// and appender count. Journal and Raw are medians over rounds, field by
// field; Ratio is the median over rounds of journal MB/s / raw MB/s.
type JournalResult struct {
	BatchBytes  int         `json:"batch_bytes"`
	Appenders   int         `json:"appenders"`
	Journal     AppendRun   `json:"journal"`
	Raw         AppendRun   `json:"raw"`
	Ratio       float64     `json:"ratio"`
	JournalRuns []AppendRun `json:"journal_runs"`
	RawRuns     []AppendRun `json:"raw_runs"`
}

// TeeResult compares the tee variants of the produce or paced scenario.
type TeeResult struct {
	// OfferedMBPerSec is the paced rate (paced scenario only).
	OfferedMBPerSec float64            `json:"offered_mb_per_sec,omitempty"`
	Variants        []TeeVariantResult `json:"variants"` // off, tee-async, tee-sync
}

// TeeVariantResult is one variant's medians and, for the tee variants,
// the comparison with off. Ratios are medians over rounds of per-round
// ratios.
type TeeVariantResult struct {
	Variant string     `json:"variant"`
	Median  ProduceRun `json:"median"`
	// ThroughputRatio is MB/s of this variant / off.
	ThroughputRatio float64 `json:"throughput_ratio,omitempty"`
	// CPURatio is CPU s/GB of off / this variant: the share of off's
	// throughput the same CPU would carry with the tee on.
	CPURatio       float64      `json:"cpu_ratio,omitempty"`
	AddedCPUPerGB  float64      `json:"added_cpu_sec_per_gb,omitempty"`
	AddedP99Micros float64      `json:"added_p99_us,omitempty"`
	Runs           []ProduceRun `json:"runs"`
}

// UploadResult is one upload configuration: medians over rounds.
type UploadResult struct {
	Config     UploadConfig `json:"config"`
	ValueBytes float64      `json:"value_bytes"` // produced per round
	// ObjectsPerGB and StoredPerProduced are objects and stored bytes
	// per GB of record values produced; BatchPerProduced is the record
	// batches' bytes per value byte (Kafka's framing).
	ObjectsPerGB      float64             `json:"objects_per_gb"`
	SegmentBytes      float64             `json:"segment_bytes"` // stored bytes per segment (with its index)
	StoredPerProduced float64             `json:"stored_per_produced"`
	BatchPerProduced  float64             `json:"batch_per_produced"`
	Transfers         map[string]Transfer `json:"transfers"`
	// Ratio is uploader MB/s / put MB/s, RatioSingle uploader /
	// put-single; medians of per-round ratios.
	Ratio       float64     `json:"ratio"`
	RatioSingle float64     `json:"ratio_single"`
	Runs        []UploadRun `json:"runs"`
}

// Target is one target from the issue, or (Check) a check that a
// measurement means what it says.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Min   float64 `json:"min"`
	Pass  bool    `json:"pass"`
	Check bool    `json:"check,omitempty"`
}

// Passed reports whether every target and check passed.
func (r *Report) Passed() bool {
	for _, t := range r.Targets {
		if !t.Pass {
			return false
		}
	}
	return true
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return runner.WriteJSON(w, r) }

// WriteTable writes r for people: a header naming the machine and
// settings, then one table per scenario and the targets.
func (r *Report) WriteTable(w io.Writer) error {
	s, m := r.Settings, r.Machine
	var b bytes.Buffer
	fmt.Fprintf(&b, "amber-archive-bench  %s  %d CPUs (GOMAXPROCS %d)  %s %s/%s  took %s\n", r.Time.Format("2006-01-02 15:04Z"),
		m.CPUs, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, r.Elapsed)
	fmt.Fprintf(&b, "%d rounds of %s windows after %s warm-up, variants rotated per round; medians; ratios are medians of per-round ratios\n",
		s.Rounds, s.Duration, s.Warmup)
	if len(r.Journal) > 0 {
		fmt.Fprintf(&b, "\n1. journal append, each appender appends one batch and waits for its commit; journal = archive.Journal (batch log + Pebble pointers, sync group commit),\n"+
			"   raw = same bytes, same grouping, one write(2) + fsync(2) per group, in the same directory (%s)\n", s.Dir)
		table(&b, "batch\tappenders\tjournal MB/s\traw MB/s\tjournal/raw\tjournal fsync/s\traw fsync/s\tbatches/fsync j/r\tjournal p99 µs\traw p99 µs\tjournal CPU s/GB\traw CPU s/GB\tstalls",
			func(row func(...any)) {
				for _, j := range r.Journal {
					row(kib(j.BatchBytes), j.Appenders, num(j.Journal.MBPerSec), num(j.Raw.MBPerSec), fmt.Sprintf("%.3f", j.Ratio),
						num(j.Journal.SyncsPerSec), num(j.Raw.SyncsPerSec), fmt.Sprintf("%.1f / %.1f", j.Journal.PerSync, j.Raw.PerSync),
						num(j.Journal.P99Micros), num(j.Raw.P99Micros), num(j.Journal.CPUPerGB), num(j.Raw.CPUPerGB), j.Journal.Stalls)
				}
			})
		fmt.Fprintf(&b, "   stalls: the journal's write stalls per run, median (Pebble stops taking writes until a memtable flush catches up)\n")
	}
	if p := r.Produce; p != nil {
		fmt.Fprintf(&b, "\n2a. proxied produce, maximum throughput: one franz-go producer, %d B random values, linger %s, %d partitions, %d kfake brokers (blackhole);\n"+
			"    a new proxy per run, its journal empty with 4 spare log files; dropped (batches the tee could not journal) and stalls are totals over the rounds\n",
			s.RecordBytes, s.Linger, s.Partitions, s.Brokers)
		table(&b, "variant\tMB/s\tvs off\tCPU s/GB\t+CPU s/GB\tjournal MB/s\tcommits/s\tdropped\tstalls\ttarget", func(row func(...any)) {
			for _, v := range p.Variants {
				row(v.Variant, num(v.Median.MBPerSec), ratioCell(v.ThroughputRatio), num(v.Median.CPUPerGB), added(v.AddedCPUPerGB, v.Variant),
					dash(v.Median.JournalMBPerSec), dash(v.Median.CommitsPerSec), dropped(v.Median, v.Variant), stalls(v.Median, v.Variant),
					targetCell(v.Variant, v.ThroughputRatio))
			}
		})
	}
	if p := r.Paced; p != nil {
		fmt.Fprintf(&b, "\n2b. proxied produce paced at %.0f MB/s of values (%.0f records/s), same producer; latency = Produce call to acknowledgement\n",
			p.OfferedMBPerSec, p.OfferedMBPerSec*1e6/float64(s.RecordBytes))
		table(&b, "variant\tachieved MB/s\tCPU s/GB\t+CPU s/GB\tCPU off/variant\tp50 µs\tp99 µs\t+p99 µs\tjournal MB/s\tcommits/s\tdropped\tstalls\ttarget", func(row func(...any)) {
			for _, v := range p.Variants {
				p99 := "-"
				if v.Variant != VariantOff {
					p99 = fmt.Sprintf("%+.0f", v.AddedP99Micros)
				}
				row(v.Variant, num(v.Median.MBPerSec), num(v.Median.CPUPerGB), added(v.AddedCPUPerGB, v.Variant), ratioCell(v.CPURatio),
					num(v.Median.P50Micros), num(v.Median.P99Micros), p99, dash(v.Median.JournalMBPerSec), dash(v.Median.CommitsPerSec),
					dropped(v.Median, v.Variant), stalls(v.Median, v.Variant), targetCell(v.Variant, v.CPURatio))
			}
		})
	}
	if len(r.Upload) > 0 {
		fmt.Fprintf(&b, "\n3. upload to MinIO on 127.0.0.1 (%s of %d B values per round through a sync tee, segments of %s); MB/s = stored bytes/s;\n"+
			"   uploader = archive.Uploader.Flush via archive/s3, put = minio-go PutObject (defaults) of the same objects, put-single = PutObject as archive/s3 (one PUT, CRC32C, If-None-Match)\n",
			mib(s.UploadBytes), s.RecordBytes, mib(int64(s.FlushBytes)))
		table(&b, "payload\tobjects/GB\tMB/segment\tstored/produced\tuploader values MB/s\tuploader MB/s\tput MB/s\tput-single MB/s\tuploader/put\tuploader/put-single\tCPU s/GB uploader/put\tMinIO CPU s/GB uploader/put\ttarget",
			func(row func(...any)) {
				for _, u := range r.Upload {
					up, put, single := u.Transfers[VariantUploader], u.Transfers[VariantPut], u.Transfers[VariantPutSingle]
					row(u.Config.String(), num(u.ObjectsPerGB), num(u.SegmentBytes/1e6), fmt.Sprintf("%.3f", u.StoredPerProduced),
						num(up.ValuesPerSec), num(up.MBPerSec), num(put.MBPerSec), num(single.MBPerSec), fmt.Sprintf("%.3f", u.Ratio), fmt.Sprintf("%.3f", u.RatioSingle),
						fmt.Sprintf("%s / %s", num(up.CPUPerGB), num(put.CPUPerGB)), fmt.Sprintf("%s / %s", num(up.MinIOCPUPerGB), num(put.MinIOCPUPerGB)),
						verdict(u.Ratio, TargetUploadRatio))
				}
			})
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(&b, "\ntargets (issue) and checks (the measurement means what it says)\n")
		table(&b, "\tvalue\tmin\t", func(row func(...any)) {
			for _, t := range r.Targets {
				name := "target  " + t.Name
				if t.Check {
					name = "check   " + t.Name
				}
				row(name, fmt.Sprintf("%.3f", t.Value), fmt.Sprintf("%.2f", t.Min), verdict(t.Value, t.Min))
			}
		})
	}
	_, err := w.Write(b.Bytes())
	return err
}

// table writes a tab-aligned table with header and the rows fill adds,
// trailing blanks trimmed.
func table(w *bytes.Buffer, header string, fill func(row func(...any))) {
	tw := runner.NewTable(w)
	fmt.Fprintln(tw, header)
	fill(func(cells ...any) {
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	})
	tw.Flush() // writes to a bytes.Buffer: no error
}

// num prints a value with as many decimals as its size deserves.
func num(v float64) string {
	switch {
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func dash(v float64) string {
	if v == 0 {
		return "-"
	}
	return num(v)
}

func ratioCell(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func added(v float64, variant string) string {
	if variant == VariantOff {
		return "-"
	}
	return fmt.Sprintf("%+.2f", v)
}

func dropped(r ProduceRun, variant string) string {
	if variant == VariantOff {
		return "-"
	}
	if r.SyncTimeouts > 0 {
		return fmt.Sprintf("%d (%d timeouts)", r.Dropped, r.SyncTimeouts)
	}
	return fmt.Sprint(r.Dropped)
}

func stalls(r ProduceRun, variant string) string {
	if variant == VariantOff {
		return "-"
	}
	return fmt.Sprint(r.Stalls)
}

func targetCell(variant string, v float64) string {
	switch variant {
	case VariantAsync:
		return verdict(v, TargetAsyncRatio)
	case VariantSync:
		return verdict(v, TargetSyncRatio)
	}
	return ""
}

func verdict(v, min float64) string {
	if v >= min {
		return fmt.Sprintf("≥ %.2f  ok", min)
	}
	return fmt.Sprintf("≥ %.2f  MISSED", min)
}

func kib(n int) string { return fmt.Sprintf("%d KiB", n>>10) }

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
