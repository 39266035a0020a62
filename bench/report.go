package bench

import (
	"fmt"
	"io"
	"strings"

	"github.com/amber-kafka/amber/bench/runner"
)

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error { return runner.WriteJSON(w, r) }

// WriteTable writes r for people: a header naming the machine and
// settings, then one line per result with both medians, the comparison
// and the target.
func (r *Report) WriteTable(w io.Writer) error {
	s, m := r.Settings, r.Machine
	fmt.Fprintf(w, "amber-bench  %s  %d CPUs (GOMAXPROCS %d)  %s %s/%s  took %s\n", r.Time.Format("2006-01-02 15:04Z"),
		m.CPUs, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, r.Elapsed)
	fmt.Fprintf(w, "kfake %d brokers, %d partitions, %d B records; %d rounds of direct+proxied, %s windows after %s warm-up; medians\n",
		s.Brokers, s.Partitions, s.RecordBytes, s.Rounds, s.Duration, s.Warmup)
	if s.FetchNodeEndpoints {
		fmt.Fprintln(w, "proxy with FetchNodeEndpoints: clients at Fetch v16+, every Fetch response decoded")
	}
	fmt.Fprintln(w)
	tw := runner.NewTable(w)
	fmt.Fprintln(tw, "scenario\tmetric\tdirect\tproxied\tproxied vs direct\ttarget")
	for _, res := range r.Results {
		var cmp string
		switch {
		case res.Compare == "ratio":
			cmp = fmt.Sprintf("ratio %.3f", res.Ratio)
		case res.Metric == "cpu_sec_per_gb":
			cmp = fmt.Sprintf("%+.2f s/GB", res.Added)
		default:
			cmp = fmt.Sprintf("%+.0f µs", res.Added)
		}
		target := ""
		if res.Pass != nil {
			verdict := "ok"
			if !*res.Pass {
				verdict = "MISSED"
			}
			target = strings.NewReplacer("ratio >= ", "≥ ", "added <= ", "≤ +").Replace(res.Target)
			if res.Compare == "added" {
				target += " µs"
			}
			target += "  " + verdict
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", scenarioLabel(res.Scenario, s), metricLabel(res.Metric),
			formatValue(res.Direct), formatValue(res.Proxied), cmp, target)
	}
	return tw.Flush()
}

// scenarioLabel names a scenario in the table.
func scenarioLabel(name string, s Settings) string {
	switch name {
	case ScenarioProduce:
		return fmt.Sprintf("produce throughput (linger %s)", s.Linger)
	case ScenarioConsume:
		return "consume throughput"
	case ScenarioSync:
		return "produce latency, sequential ProduceSync"
	case ScenarioPaced:
		return fmt.Sprintf("produce latency at %.0f records/s", s.PacedRate)
	}
	return name
}

// metricLabel names a metric in the table.
func metricLabel(name string) string {
	switch name {
	case "mb_per_sec":
		return "MB/s"
	case "records_per_sec":
		return "records/s"
	case "cpu_sec_per_gb":
		return "CPU s/GB"
	case "p50_us":
		return "p50 µs"
	case "p99_us":
		return "p99 µs"
	}
	return name
}

// formatValue prints a median with as many decimals as its size deserves.
func formatValue(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
