package completeness

import (
	"fmt"
	"io"

	"github.com/amber-kafka/amber/bench/runner"
)

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return runner.WriteJSON(w, r) }

// WriteTable writes r for people: the machine and settings, then per
// shape the median MB/s of each measurement, CPU seconds per GB, and the
// backfill/consume ratio against its target.
func (r *Report) WriteTable(w io.Writer) error {
	o := r.Options
	fmt.Fprintf(w, "amber-completeness-bench  %s  %d CPUs  %s  took %s\n", r.Time.Format("2006-01-02 15:04Z"), r.CPUs, r.Go, r.Elapsed)
	fmt.Fprintf(w, "kfake %d brokers, %d partitions, %d B records, %d MiB per shape; archive in %s; %d rounds; medians\n\n",
		o.Brokers, o.Partitions, o.RecordBytes, o.ShapeBytes>>20, o.Store, o.Rounds)
	tw := runner.NewTable(w)
	fmt.Fprintln(tw, "shape\tbatches\tlog\tarchive\tconsume\tbackfill\tbackfill/consume\tbackfill fetch side\tverify\tverify --against")
	for _, s := range r.Shapes {
		verdict := "ok"
		if !s.Pass {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f MB\t%.0f MB\t%s\t%s\t%.3f (≥ %.1f %s)\t%s (%.3f)\t%s\t%s\n", s.Shape, s.Batches, float64(s.LogBytes)/1e6, float64(s.ArchiveBytes)/1e6,
			cell(s, MeasureConsume), cell(s, MeasureBackfill), s.Ratio, r.Target, verdict,
			cell(s, MeasureBackfillFetch), s.Median[MeasureBackfillFetch]/s.Median[MeasureConsume], cell(s, MeasureVerify), cell(s, MeasureVerifyAgainst))
	}
	return tw.Flush()
}

// cell is a measurement's median MB/s and its CPU seconds per GB moved.
func cell(s ShapeResult, m string) string {
	var cpu, bytes float64
	for _, r := range s.Runs[m] {
		cpu += r.CPUSec
		bytes += float64(r.Bytes)
	}
	if bytes == 0 {
		return fmt.Sprintf("%.0f MB/s", s.Median[m])
	}
	return fmt.Sprintf("%.0f MB/s (%.2f CPU s/GB)", s.Median[m], cpu/(bytes/1e9))
}

// Passed reports whether every shape met TargetRatio: AllPass.
func (r *Report) Passed() bool { return r.AllPass }
