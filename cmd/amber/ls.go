package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
)

const lsExamples = `  amber ls --archive amber-data            # a proxy's data directory
  amber ls --archive file:///var/lib/amber --json | jq '.[] | select(.holes != [])'`

// runLs lists, per partition, the offsets and times the archive covers and
// the holes inside.
func runLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", "--archive PATH [--json]", lsExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: a proxy's data directory (file:///DIR or a bare path) (required)")
	asJSON := fs.Bool("json", false, "print a JSON array, one object per partition")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *archiveURL == "" {
		return usagef("--archive is required")
	}
	dir, err := journalDir(*archiveURL)
	if err != nil {
		return err
	}
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: dir, ReadOnly: true})
	if err != nil {
		return err
	}
	defer j.Close()
	cov, err := j.Coverage()
	if err != nil {
		return fmt.Errorf("read journal %s: %w", dir, err)
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
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSETS\tRECORDS\tBATCHES\tBYTES\tHOLES\tFIRST ACK\tLAST ACK")
	for _, c := range cov {
		fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%d\t%d\t%s\t%s\t%s\t%s\n", c.Topic, c.Partition, c.StartOffset, c.EndOffset,
			c.Records, c.Batches, humanBytes(c.Bytes), holesSummary(c.Holes),
			c.FirstAckTime.Format(time.RFC3339), c.LastAckTime.Format(time.RFC3339))
	}
	return tw.Flush()
}

// journalDir finds the journal for an --archive argument. Until object
// storage lands, an archive is a proxy's data directory; its default
// archive path (DATA/archive) is accepted too.
func journalDir(arg string) (string, error) {
	if strings.HasPrefix(arg, "s3://") {
		return "", fmt.Errorf("%s: this amber reads local archives only (a proxy's data directory)", arg)
	}
	path := strings.TrimPrefix(arg, "file://")
	candidates := []string{filepath.Join(path, "journal"), path}
	if filepath.Base(path) == "archive" {
		candidates = append(candidates, filepath.Join(filepath.Dir(path), "journal"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "CURRENT")); err == nil {
			return c, nil
		}
		if matches, _ := filepath.Glob(filepath.Join(c, "MANIFEST-*")); len(matches) > 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("no archive at %s: give the data directory of an amber proxy (--data), which holds journal/", arg)
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
