package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amber-kafka/amber/archive"
)

const backfillExamples = `  # Fill every hole of every topic (markers, records produced around the proxy).
  amber backfill --archive s3://backups/kafka-prod --bootstrap kafka-0:9092,kafka-1:9092

  # A proxy's data directory: its archive, with what its journal holds counted as archived.
  amber backfill --archive amber-data --bootstrap localhost:9092 --topic orders,payments

  # TLS to the brokers; a JSON report for scripts.
  amber backfill --archive file:///backups/kafka --bootstrap kafka:9093 --upstream-ca ca.pem --json`

// runBackfill fetches, per partition, exactly the offsets the archive
// lacks from the cluster and writes them into the archive as a writer of
// its own; records what the cluster no longer has as known loss; and
// snapshots topic configs and group offsets.
func runBackfill(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backfill", "--archive URL --bootstrap HOST:PORT[,...] [--topic T,...] [flags]", backfillExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (required)")
	var bootstrap, topics listFlag
	fs.Var(&bootstrap, "bootstrap", "the cluster's brokers, HOST:PORT, comma-separated or repeated (required)")
	fs.Var(&topics, "topic", "topics to backfill, comma-separated or repeated (default: every topic but internal ones)")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive; what is written is encrypted with it too")
	noSnapshots := fs.Bool("no-snapshots", false, "do not snapshot topic configs and group offsets")
	concurrency := fs.Int("concurrency", archive.DefaultBackfillConcurrency, "partitions fetched at once")
	flushBytes := fs.Int("flush-bytes", archive.DefaultFlushBytes, "size of the segments written")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var auth clusterAuth
	auth.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *archiveURL == "" || len(bootstrap) == 0 {
		return usagef("--archive and --bootstrap are required")
	}
	if *concurrency < 1 || *flushBytes < 1<<10 {
		return usagef("--concurrency %d, --flush-bytes %d: want at least 1 and 1024", *concurrency, *flushBytes)
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, j, err := openSource(ctx, *archiveURL, "what it has not uploaded yet is not counted as archived", stderr)
	if err != nil {
		return err
	}
	defer j.Close()
	cl, err := auth.client(bootstrap)
	if err != nil {
		return err
	}
	defer cl.Close()
	w, err := archive.NewWriter(ctx, archive.WriterOptions{Store: store, WriterID: archive.NewWriterID(), Key: key, FlushBytes: *flushBytes})
	if err != nil {
		return err
	}
	bar := &lazyBar{w: stderr, label: "backfill offsets"}
	b, err := archive.NewBackfiller(archive.BackfillOptions{
		Client: cl, Sink: w, Store: store, Key: key, Journal: j, Topics: topics, NoSnapshots: *noSnapshots, Concurrency: *concurrency,
		Progress: bar.set,
	})
	if err != nil {
		return usageError{err}
	}
	rep, stepErr := b.Step(ctx)
	bar.done()
	if err := w.Flush(ctx); err != nil {
		return fmt.Errorf("upload to %s: %w (nothing is lost: run the backfill again)", store, err)
	}
	if stepErr != nil && len(rep.Partitions) == 0 {
		return stepErr
	}
	ws := w.Stats()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*archive.BackfillReport
			WriterID string `json:"writer_id"`
			Uploads  int64  `json:"uploads"`
		}{rep, w.ID(), ws.Uploads}); err != nil {
			return err
		}
	} else {
		printBackfill(stdout, rep, w.ID(), ws, store.String())
	}
	if stepErr != nil {
		return fmt.Errorf("backfill incomplete (what was fetched is archived; run it again): %w", stepErr)
	}
	return nil
}

func printBackfill(w io.Writer, rep *archive.BackfillReport, writer string, ws archive.WriterStats, store string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLOG START\tHIGH WATERMARK\tMISSING\tFETCHED\tBATCHES\tBYTES\tKNOWN LOSS")
	complete := 0
	for _, p := range rep.Partitions {
		if len(p.Missing) == 0 && len(p.KnownLoss) == 0 && p.Error == "" {
			complete++
			continue
		}
		var lost []string
		for _, l := range p.KnownLoss {
			lost = append(lost, fmt.Sprintf("[%d,%d) %s", l.Start, l.End, l.Reason))
		}
		loss := strings.Join(lost, " ")
		if loss == "" {
			loss = "-"
		}
		if p.Error != "" {
			loss += "  error: " + p.Error
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.LogStartOffset, p.HighWatermark,
			holesSummary(p.Missing), p.Offsets, p.Batches, humanBytes(p.Bytes), loss)
	}
	if complete < len(rep.Partitions) {
		tw.Flush()
	}
	fmt.Fprintf(w, "%d of %d partitions were complete already.\n", complete, len(rep.Partitions))
	fmt.Fprintf(w, "Fetched %d offsets in %d batches (%s) in %s", rep.Offsets, rep.Batches, humanBytes(rep.Bytes), rep.Duration.Round(time.Millisecond))
	if s := rep.Duration.Seconds(); s > 0 && rep.Bytes > 0 {
		fmt.Fprintf(w, ", %s/s", humanBytes(int64(float64(rep.Bytes)/s)))
	}
	fmt.Fprintf(w, "; recorded %d offsets as known loss; snapshotted %d topic configs and %d groups' offsets.\n",
		rep.KnownLoss, rep.ConfigSnapshots, rep.GroupSnapshots)
	if ws.Uploads > 0 {
		fmt.Fprintf(w, "Wrote %d uploads (%s) to %s as writer %s.\n", ws.Uploads, humanBytes(ws.Bytes), store, writer)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

// registerBackfillMetrics exposes the proxy's background backfill.
func registerBackfillMetrics(reg prometheus.Registerer, b *archive.Backfiller) {
	counter := func(name, help string, f func(archive.BackfillStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(b.Stats()) })
	}
	reg.MustRegister(
		counter("amber_backfill_passes_total", "Background backfill passes run.", func(s archive.BackfillStats) float64 { return float64(s.Passes) }),
		counter("amber_backfill_failed_passes_total", "Background backfill passes that failed (retried next interval).", func(s archive.BackfillStats) float64 { return float64(s.FailedPasses) }),
		counter("amber_backfill_batches_total", "Batches the background backfill fetched into the journal.", func(s archive.BackfillStats) float64 { return float64(s.Batches) }),
		counter("amber_backfill_bytes_total", "Bytes the background backfill fetched into the journal.", func(s archive.BackfillStats) float64 { return float64(s.Bytes) }),
		counter("amber_backfill_known_loss_offsets_total", "Offsets recorded as known loss: gone from the cluster before they were archived.", func(s archive.BackfillStats) float64 { return float64(s.LossOffset) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "amber_backfill_last_pass_timestamp_seconds", Help: "When the last background backfill pass ended."}, func() float64 {
			if t := b.Stats().LastPass; !t.IsZero() {
				return float64(t.UnixNano()) / 1e9
			}
			return 0
		}),
	)
}
