package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
)

const lsExamples = `  amber ls --archive amber-data            # a proxy's data directory: archive + journal
  amber ls --archive s3://backups/kafka-prod --json | jq '.[] | select(.holes != [])'
  AWS_ENDPOINT_URL=http://minio:9000 amber ls --archive s3://backups/kafka-prod`

// runLs lists, per partition, the offsets and times the archive covers and
// the holes inside.
func runLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", "--archive URL [--json]", lsExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (its archive plus what its journal holds that is not uploaded yet) (required)")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per partition")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *archiveURL == "" {
		return usagef("--archive is required")
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cov, err := archiveCoverage(ctx, *archiveURL, key, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if cov == nil {
			cov = []archive.PartitionCoverage{}
		}
		return enc.Encode(cov)
	}
	if len(cov) == 0 {
		fmt.Fprintf(stdout, "the archive at %s holds no batches yet\n", *archiveURL)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSETS\tRECORDS\tBATCHES\tBYTES\tHOLES\tKNOWN LOSS\tFIRST ACK\tLAST ACK")
	for _, c := range cov {
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Topic, c.Partition, c.StartOffset, c.EndOffset,
			c.Records, c.Batches, humanBytes(c.Bytes), holesSummary(c.Holes), lossSummary(c.KnownLoss),
			c.FirstAckTime.Format(time.RFC3339), c.LastAckTime.Format(time.RFC3339))
	}
	return tw.Flush()
}

// archiveCoverage reads what an --archive argument holds. For a proxy's
// data directory that is DATA/archive plus whatever the journal holds that
// is not uploaded yet (unless a running proxy holds the journal: then a
// note to stderr says so).
func archiveCoverage(ctx context.Context, url string, key *archive.Key, stderr io.Writer) ([]archive.PartitionCoverage, error) {
	a, j, err := openArchiveAndJournal(ctx, url, key, "what it has not uploaded yet is not shown", stderr)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	return archive.CombinedCoverage(a, j)
}

func holesSummary(holes [][2]int64) string {
	switch len(holes) {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf("[%d,%d)", holes[0][0], holes[0][1])
	default:
		var missing int64
		for _, h := range holes {
			missing += h[1] - h[0]
		}
		return fmt.Sprintf("%d (%d offsets)", len(holes), missing)
	}
}

func lossSummary(ls []archive.LossRange) string {
	h := make([][2]int64, len(ls))
	for i, l := range ls {
		h[i] = [2]int64{l.Start, l.End}
	}
	return holesSummary(h)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
