package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
)

const verifyExamples = `  # Integrity: every object's checksum, every batch's CRC, every index against its data.
  amber verify --archive s3://backups/kafka-prod

  # Completeness and equality: archive == cluster, record by record, where the cluster still has data.
  amber verify --archive s3://backups/kafka-prod --against kafka-0:9092 --topic orders

  # For scripts: exit 1 on any problem, the details as JSON.
  amber verify --archive amber-data --json || alert`

// runVerify checks an archive: its integrity, or with --against, that it
// holds exactly what the cluster holds. Exit 1 on any problem.
func runVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "--archive URL [--against HOST:PORT[,...] [--topic T,...]] [--json]", verifyExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (its archive) (required)")
	var against, topics listFlag
	fs.Var(&against, "against", "compare with this cluster (its brokers, HOST:PORT) record by record instead of checking integrity")
	fs.Var(&topics, "topic", "with --against: topics to compare (default: every topic of the cluster but internal ones)")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	publicKey := fs.String("public-key", "", "an export (a directory amber export wrote, or its --tar file): require every manifest signed by this ed25519 public key")
	concurrency := fs.Int("concurrency", archive.DefaultVerifyConcurrency, "segments (or, with --against, partitions) read at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var auth clusterAuth
	auth.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *archiveURL == "" {
		return usagef("--archive is required")
	}
	if len(topics) > 0 && len(against) == 0 {
		return usagef("--topic needs --against (an integrity check covers the whole archive)")
	}
	if *concurrency < 1 {
		return usagef("--concurrency %d: want at least 1", *concurrency)
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(against) == 0 {
		if done, err := verifyIfExport(ctx, *archiveURL, key, *publicKey, *concurrency, *asJSON, stdout, stderr); done {
			return err
		}
	}
	if *publicKey != "" {
		return usagef("--public-key checks an export's signatures: %s is not an export (a directory with manifest/, or a .tar amber export wrote)", *archiveURL)
	}
	store, j, err := openSource(ctx, *archiveURL, "what it has not uploaded yet is not counted as archived", io.Discard)
	if err != nil {
		return err
	}
	if j != nil {
		if n := j.BacklogBytes(); n > 0 {
			fmt.Fprintf(stderr, "note: the proxy's journal holds %s not uploaded yet; only the archive is verified\n", humanBytes(n))
		}
		j.Close()
	}
	if len(against) == 0 {
		return verifyIntegrity(ctx, store, key, *concurrency, *asJSON, stdout, stderr)
	}
	return verifyAgainst(ctx, store, key, against, topics, &auth, *concurrency, *asJSON, stdout, stderr)
}

func verifyIntegrity(ctx context.Context, store archive.Store, key *archive.Key, concurrency int, asJSON bool, stdout, stderr io.Writer) error {
	bar := &lazyBar{w: stderr, label: "verify", bytes: true}
	rep, err := archive.VerifyIntegrity(ctx, store, archive.VerifyOptions{Key: key, Concurrency: concurrency, Progress: bar.set})
	bar.done()
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(stdout, struct {
			*archive.IntegrityReport
			OK bool `json:"ok"`
		}{rep, rep.OK()}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INDEXES\tSEGMENTS\tBLOCKS\tBATCHES\tRECORDS\tEVENTS\tREAD\tTOOK\tRATE")
		rate := "-"
		if s := rep.Duration.Seconds(); s > 0 {
			rate = humanBytes(int64(float64(rep.Bytes)/s)) + "/s"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", rep.Indexes, rep.Segments, rep.Blocks, rep.Batches, rep.Records, rep.Events,
			humanBytes(rep.Bytes), rep.Duration.Round(time.Millisecond), rate)
		tw.Flush()
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		if rep.OK() {
			fmt.Fprintf(stdout, "%s: every object, block and batch checks out.\n", store)
		}
	}
	if !rep.OK() {
		n := 0
		for _, p := range rep.Problems {
			if !p.Warning {
				n++
			}
		}
		return fmt.Errorf("%d problems in %s (listed above); restore from the damaged objects would fail or be wrong", n, store)
	}
	return nil
}

func verifyAgainst(ctx context.Context, store archive.Store, key *archive.Key, seeds, topics []string, auth *clusterAuth, concurrency int, asJSON bool, stdout, stderr io.Writer) error {
	cl, err := auth.client(seeds)
	if err != nil {
		return err
	}
	defer cl.Close()
	a, err := archive.OpenArchive(ctx, store, key)
	if err != nil {
		return fmt.Errorf("%w (run amber verify --archive without --against to list every damaged object)", err)
	}
	bar := &lazyBar{w: stderr, label: "verify offsets"}
	cmp, err := a.CompareWithCluster(ctx, archive.CompareOptions{Client: cl, Topics: topics, Concurrency: concurrency, Progress: bar.set})
	bar.done()
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(stdout, struct {
			*archive.Comparison
			OK bool `json:"ok"`
		}{cmp, cmp.OK()}); err != nil {
			return err
		}
	} else {
		printComparison(stdout, cmp)
	}
	if !cmp.OK() {
		return fmt.Errorf("the archive differs from the cluster: %d records missing, %d differing (run amber backfill to fetch what is missing)", cmp.Missing, cmp.Differing)
	}
	return nil
}

func printComparison(w io.Writer, cmp *archive.Comparison) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSETS\tMATCHED\tMISSING\tDIFFERING\tARCHIVE ONLY\tSTATUS")
	var details []string
	for _, p := range cmp.Partitions {
		status := "ok"
		switch {
		case p.Error != "":
			status = "error: " + p.Error
		case p.Missing > 0 || p.Differing > 0:
			status = "MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition, p.LogStartOffset, p.HighWatermark,
			p.Matched, p.Missing, p.Differing, p.ArchiveOnly, status)
		if p.Missing > 0 {
			var rs []string
			for _, r := range p.MissingRanges {
				rs = append(rs, fmt.Sprintf("[%d,%d)", r[0], r[1]))
			}
			more := ""
			if n := p.MissingRangeCount - len(p.MissingRanges); n > 0 {
				more = fmt.Sprintf(" and %d more ranges", n)
			}
			details = append(details, fmt.Sprintf("%s/%d missing from the archive: %s%s", p.Topic, p.Partition, strings.Join(rs, " "), more))
		}
		for _, d := range p.Differences {
			details = append(details, fmt.Sprintf("%s/%d offset %d differs: %s", p.Topic, p.Partition, d.Offset, strings.Join(d.Fields, ", ")))
		}
	}
	tw.Flush()
	for _, d := range details {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintf(w, "%d records matched, %d missing, %d differing, %d only in the archive (compacted in the cluster since); %s of cluster data in %s\n",
		cmp.Matched, cmp.Missing, cmp.Differing, cmp.ArchiveOnly, humanBytes(cmp.Bytes), cmp.Duration.Round(time.Millisecond))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lazyBar is a progress bar made on the first report, when the total is
// known. set may be called from several goroutines.
type lazyBar struct {
	w     io.Writer
	label string
	bytes bool
	once  sync.Once
	bar   *progress
}

func (l *lazyBar) set(done, total int64) {
	l.once.Do(func() { l.bar = newProgress(l.w, l.label, total, l.bytes) })
	l.bar.Set(done)
}

// done ends the bar, once every set has returned.
func (l *lazyBar) done() {
	if l.bar != nil {
		l.bar.Done()
	}
}
